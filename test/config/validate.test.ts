/** Every validation rule fails with a message naming its config.json key. */
import { checkExtraKeys, defaultConfig, parseConfig, validateConfig, vlmBackboneToJson, SMOLVLM2_500M_BACKBONE } from '../../lib/config';
import { lerobotConfigJson } from './lerobot';

const backbone = (patch: { text?: object; vision?: object; scale_factor?: number }) => {
  const b = vlmBackboneToJson(SMOLVLM2_500M_BACKBONE) as { text_config: object; vision_config: object; scale_factor: number };
  return {
    text_config: { ...b.text_config, ...patch.text },
    vision_config: { ...b.vision_config, ...patch.vision },
    scale_factor: patch.scale_factor ?? b.scale_factor,
  };
};

/** [config.json patch, pattern the message must match]. */
const RULES: [Record<string, unknown>, RegExp][] = [
  [{ n_action_steps: 51 }, /n_action_steps \(51\) must be <= chunk_size \(50\)/],
  [{ chunk_size: 0 }, /chunk_size must be an integer in \[1, 4096\], received 0/],
  [{ n_action_steps: 0 }, /n_action_steps must be an integer in \[1, 4096\]/],
  [{ n_obs_steps: 0 }, /n_obs_steps must be an integer in \[1, 4096\]/],
  [{ max_state_dim: 0 }, /max_state_dim must be an integer in \[1, 65536\]/],
  [{ max_action_dim: -1 }, /max_action_dim must be an integer in \[1, 65536\]/],
  [{ max_state_dim: 4 }, /input_features\["observation.state"\] has 6 dims, more than max_state_dim \(4\)/],
  [{ max_action_dim: 5 }, /output_features\["action"\] has 6 dims, more than max_action_dim \(5\)/],
  [{ tokenizer_max_length: 0 }, /tokenizer_max_length must be an integer in \[1, 8192\]/],
  [{ num_steps: 0 }, /num_steps must be an integer in \[1, 4096\]/],
  [{ empty_cameras: -1 }, /empty_cameras must be an integer in \[0, 64\]/],
  [{ scheduler_warmup_steps: -1 }, /scheduler_warmup_steps must be an integer >= 0/],
  [{ scheduler_decay_steps: 0 }, /scheduler_decay_steps must be an integer >= 1/],
  [{ num_vlm_layers: 33 }, /num_vlm_layers \(33\) must be <= the backbone's text_config.num_hidden_layers \(32\)/],
  [{ num_expert_layers: 3 }, /num_vlm_layers \(16 kept VLM layers\) must be a multiple of num_expert_layers \(3\)/],
  [{ num_vlm_layers: -1, num_expert_layers: 5 }, /num_vlm_layers \(32 kept VLM layers\) must be a multiple of num_expert_layers \(5\)/],
  [{ use_delta_joint_actions_aloha: true }, /use_delta_joint_actions_aloha: true is not supported/],
  [{ adapt_to_pi_aloha: true }, /adapt_to_pi_aloha: true is not supported here/],
  [{ use_cache: false }, /use_cache: false is not supported \(the published sampler crashes/],
  [{ use_cls_head: true, num_cls_prefix: 2, num_cls_suffix: 3 }, /num_cls_prefix \(2\) and num_cls_suffix \(3\) must be equal when use_cls_head is true/],
  [{ use_cls_head: true, num_cls_prefix: 1, num_cls_suffix: 1 }, /num_cls_prefix must be in 2..4 when use_cls_head is true, received 1: .*seeds' range 1..4 is narrowed to 2..4/],
  [{ use_cls_head: true, num_cls_prefix: 5, num_cls_suffix: 5 }, /num_cls_suffix must be in 2..4 when use_cls_head is true, received 5/],
  [{ num_cls_prefix: 0 }, /num_cls_prefix must be an integer in \[1, 1024\]/],
  [{ cls_similarity_threshold: 1.5 }, /cls_similarity_threshold must be in \[0, 1\], received 1.5/],
  [{ cls_similarity_threshold: -0.1 }, /cls_similarity_threshold must be in \[0, 1\]/],
  [{ pad_language_to: 'shortest' }, /pad_language_to must be "longest" or "max_length", received "shortest"/],
  [{ vicreg_weight: -0.01 }, /vicreg_weight must be a non-negative number/],
  [{ vicreg_lambda: -1 }, /vicreg_lambda must be a non-negative number/],
  [{ vicreg_mu: -1 }, /vicreg_mu must be a non-negative number/],
  [{ vicreg_nu: -1 }, /vicreg_nu must be a non-negative number/],
  [{ cls_noise_scale: -1 }, /cls_noise_scale must be a non-negative number/],
  [{ min_period: 0 }, /min_period must be a positive number/],
  [{ max_period: -4 }, /max_period must be a positive number/],
  [{ expert_width_multiplier: 0 }, /expert_width_multiplier must be a positive number/],
  [{ expert_width_multiplier: 0.7515625 }, /expert_width_multiplier \(0.7515625\) gives an expert hidden size of 721 .*must be even/],
  [{ optimizer_lr: 0 }, /optimizer_lr must be a positive number/],
  [{ optimizer_betas: [0.9, 1] }, /optimizer_betas must be two numbers in \[0, 1\)/],
  [{ optimizer_eps: 0 }, /optimizer_eps must be a positive number/],
  [{ optimizer_weight_decay: -1 }, /optimizer_weight_decay must be a non-negative number/],
  [{ optimizer_grad_clip_norm: 0 }, /optimizer_grad_clip_norm must be a positive number/],
  [{ scheduler_decay_lr: -1 }, /scheduler_decay_lr must be a non-negative number/],
  [{ resize_imgs_with_padding: [0, 512] }, /resize_imgs_with_padding must be two integers \[width, height\] in \[1, 8192\]/],
  [{ resize_imgs_with_padding: [512, 256] }, /resize_imgs_with_padding \[512, 256\] gives a 16 x 32 patch grid .*square grid divisible by scale_factor \(4\)/],
  [{ resize_imgs_with_padding: [496, 496] }, /resize_imgs_with_padding \[496, 496\] gives a 31 x 31 patch grid/],
  [{ input_features: { 'observation.images.x': { type: 'IMAGE', shape: [3, 4, 4] } } }, /input_features\["observation.images.x"\].type must be one of STATE, VISUAL/],
  [{ output_features: { action: { type: 'ACTION', shape: [0] } } }, /output_features\["action"\].shape must be at most 8 integers in \[1, 65536\]/],
  [{ normalization_mapping: { VISUAL: 'NONE' } }, /normalization_mapping\["VISUAL"\]: unknown mode "NONE"/],
  [{ normalization_mapping: { IMAGE: 'IDENTITY' } }, /normalization_mapping: unknown feature type "IMAGE"/],
  [{ vlm_backbone: backbone({ text: { attention_bias: true } }) }, /vlm_backbone.text_config.attention_bias: true is not supported/],
  [{ vlm_backbone: backbone({ text: { num_key_value_heads: 4 } }) }, /num_attention_heads \(15\) must be a multiple of num_key_value_heads \(4\)/],
  [{ vlm_backbone: backbone({ text: { head_dim: 63 } }) }, /vlm_backbone.text_config.head_dim must be even/],
  [{ vlm_backbone: backbone({ text: { hidden_size: 0 } }) }, /vlm_backbone.text_config.hidden_size must be an integer in \[1, 65536\]/],
  [{ vlm_backbone: backbone({ text: { rms_norm_eps: 0 } }) }, /vlm_backbone.text_config.rms_norm_eps must be a positive number/],
  [{ vlm_backbone: backbone({ vision: { image_size: 500 } }) }, /vlm_backbone.vision_config.image_size \(500\) must be a multiple of patch_size \(16\)/],
  [{ vlm_backbone: backbone({ vision: { num_attention_heads: 7 } }) }, /vlm_backbone.vision_config.hidden_size \(768\) must be a multiple of num_attention_heads \(7\)/],
  [{ vlm_backbone: backbone({ vision: { layer_norm_eps: -1 } }) }, /vlm_backbone.vision_config.layer_norm_eps must be a positive number/],
  [{ vlm_backbone: backbone({ scale_factor: 0 }) }, /vlm_backbone.scale_factor must be an integer in \[1, 1024\]/],
  [{ vlm_backbone: backbone({ scale_factor: 3 }) }, /square grid divisible by scale_factor \(3\)/],
];

describe('validation', () => {
  it('accepts the realistic config and the defaults', () => {
    expect(() => parseConfig(lerobotConfigJson())).not.toThrow();
    expect(() => validateConfig(defaultConfig())).not.toThrow();
  });

  it.each(RULES)('%j is rejected', (patch, message) => {
    expect(() => parseConfig({ ...lerobotConfigJson(), ...patch })).toThrow(message);
  });

  it('ignores the CLS counts when the head is off, and accepts the seeds range only where it is consistent', () => {
    expect(parseConfig({ use_cls_head: false, num_cls_prefix: 1, num_cls_suffix: 3 }).numClsSuffix).toBe(3);
    for (const n of [2, 3, 4]) expect(parseConfig({ use_cls_head: true, num_cls_prefix: n, num_cls_suffix: n }).numClsPrefix).toBe(n);
  });

  it('accepts the LeRobot conventions for <= 0 layer counts and self-attention spacing', () => {
    expect(() => parseConfig({ num_vlm_layers: 0, num_expert_layers: 8, self_attn_every_n_layers: 0 })).not.toThrow();
    expect(() => parseConfig({ attention_mode: 'self_attn', prefix_length: 64 })).not.toThrow();
  });

  it('reports every problem at once', () => {
    expect(() => parseConfig({ chunk_size: 0, use_cache: false, vicreg_mu: -1 })).toThrow(
      /invalid SmolVLA config:\n- chunk_size.*\n- use_cache.*\n- vicreg_mu/s,
    );
  });

  it('checks configs built or changed in TypeScript too', () => {
    const cfg = defaultConfig();
    expect(() => validateConfig({ ...cfg, numSteps: 1.5 })).toThrow(/num_steps must be an integer in \[1, 4096\], received 1.5/);
    expect(() => validateConfig({ ...cfg, attentionMode: 3 as unknown as string })).toThrow(/attention_mode must be a string/);
    expect(() => validateConfig({ ...cfg, extra: { chunk_size: 3 } })).toThrow(/extra\["chunk_size"\]: "chunk_size" is a modelled key/);
    expect(() => defaultConfig({ extra: { vlm_backbone: {} } })).toThrow(/extra\["vlm_backbone"\]/);
    expect(() => checkExtraKeys({ device: 'cpu' })).not.toThrow();
  });

  it('rejects unknown keys inside vlm_backbone instead of dropping them', () => {
    expect(() => parseConfig({ vlm_backbone: backbone({ text: { rope_theta: 1e5 } }) })).toThrow(
      /vlm_backbone.text_config: unknown key "rope_theta" \(accepted: vocab_size, hidden_size/,
    );
    expect(() => parseConfig({ vlm_backbone: { ...backbone({}), model_type: 'smolvlm' } })).toThrow(/vlm_backbone: unknown key "model_type"/);
  });
});
