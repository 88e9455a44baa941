/** The defaults equal LeRobot's (plus the delta-expert keys) with the SmolVLM2-500M backbone, and every config.json key maps to its field name exactly. */
import {
  CONFIG_FIELD_NAMES,
  camelToSnake,
  configToJson,
  defaultConfig,
  SMOLVLM2_500M,
  snakeToCamel,
} from '../../lib/config';

/** The defaults, written out key by key in config.json's names. */
const SPEC_DEFAULTS: Record<string, unknown> = {
  n_obs_steps: 1,
  chunk_size: 50,
  n_action_steps: 50,
  max_state_dim: 32,
  max_action_dim: 32,
  resize_imgs_with_padding: [512, 512],
  empty_cameras: 0,
  adapt_to_pi_aloha: false,
  use_delta_joint_actions_aloha: false,
  tokenizer_max_length: 48,
  pad_language_to: 'longest',
  num_steps: 10,
  use_cache: true,
  prefix_length: -1,
  add_image_special_tokens: false,
  attention_mode: 'cross_attn',
  num_expert_layers: -1,
  num_vlm_layers: 16,
  self_attn_every_n_layers: 2,
  expert_width_multiplier: 0.75,
  min_period: 0.004,
  max_period: 4.0,
  vlm_model_name: 'HuggingFaceTB/SmolVLM2-500M-Video-Instruct',
  load_vlm_weights: false,
  load_expert_weights: false,
  input_features: {},
  output_features: {},
  normalization_mapping: { VISUAL: 'IDENTITY', STATE: 'MEAN_STD', ACTION: 'MEAN_STD' },
  freeze_vision_encoder: true,
  train_expert_only: true,
  train_state_proj: true,
  optimizer_lr: 1e-4,
  optimizer_betas: [0.9, 0.95],
  optimizer_eps: 1e-8,
  optimizer_weight_decay: 1e-10,
  optimizer_grad_clip_norm: 10,
  scheduler_warmup_steps: 1000,
  scheduler_decay_steps: 30000,
  scheduler_decay_lr: 2.5e-6,
  train_delta_expert: false,
  use_cls_head: false,
  num_cls_prefix: 2,
  num_cls_suffix: 2,
  vicreg_weight: 0.01,
  vicreg_lambda: 25.0,
  vicreg_mu: 25.0,
  vicreg_nu: 1.0,
  cls_noise_scale: 0.01,
  cls_similarity_threshold: 0.5,
};

const SPEC_BACKBONE = {
  text_config: {
    vocab_size: 49280,
    hidden_size: 960,
    intermediate_size: 2560,
    num_hidden_layers: 32,
    num_attention_heads: 15,
    num_key_value_heads: 5,
    head_dim: 64,
    rms_norm_eps: 1e-5,
    attention_bias: false,
  },
  vision_config: {
    hidden_size: 768,
    intermediate_size: 3072,
    num_hidden_layers: 12,
    num_attention_heads: 12,
    patch_size: 16,
    image_size: 512,
    layer_norm_eps: 1e-6,
  },
  scale_factor: 4,
};

describe('defaults', () => {
  it('defaultConfig() is the defaults with the SmolVLM2-500M backbone', () => {
    expect(configToJson(defaultConfig())).toStrictEqual({ type: 'smolvla', ...SPEC_DEFAULTS, vlm_backbone: SPEC_BACKBONE });
  });

  it('has camelCase fields whose snake_case forms are exactly the config.json keys', () => {
    const cfg = defaultConfig();
    expect(CONFIG_FIELD_NAMES.map(camelToSnake)).toEqual(Object.keys(SPEC_DEFAULTS));
    for (const key of Object.keys(SPEC_DEFAULTS)) expect(cfg).toHaveProperty(snakeToCamel(key), SPEC_DEFAULTS[key]);
    expect(cfg.resizeImgsWithPadding).toEqual([512, 512]);
    expect(cfg.nActionSteps).toBe(50);
    expect(cfg.useDeltaJointActionsAloha).toBe(false);
    expect(cfg.selfAttnEveryNLayers).toBe(2);
    expect(cfg.vlmModelName).toBe(SMOLVLM2_500M);
    expect(cfg.extra).toEqual({});
  });

  it('applies overrides and returns independent copies', () => {
    const a = defaultConfig({ chunkSize: 20, nActionSteps: 10 });
    expect([a.chunkSize, a.nActionSteps]).toEqual([20, 10]);
    a.resizeImgsWithPadding[0] = 1;
    a.normalizationMapping.VISUAL = 'MIN_MAX';
    a.vlmBackbone.textConfig.hiddenSize = 1;
    const b = defaultConfig();
    expect(b.resizeImgsWithPadding).toEqual([512, 512]);
    expect(b.normalizationMapping.VISUAL).toBe('IDENTITY');
    expect(b.vlmBackbone.textConfig.hiddenSize).toBe(960);
  });

  it('type-checks overrides like config.json and rejects unknown fields', () => {
    expect(() => defaultConfig({ chunkSize: '50' as unknown as number })).toThrow(/chunk_size: expected an integer, received the string "50"/);
    expect(() => defaultConfig({ chunksize: 5 } as unknown as Partial<ReturnType<typeof defaultConfig>>)).toThrow(/unknown field "chunksize"/);
  });
});
