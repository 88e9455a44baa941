/**
 * The split of a configuration between LeRobot's `config.json` and this project's side file.
 *
 * Python LeRobot parses `config.json` with draccus into its `SmolVLAConfig` dataclass, which rejects
 * any key the dataclass does not declare. So `config.json` holds only keys LeRobot's SmolVLA config
 * (and its `PreTrainedConfig` base) knows, plus the delta-expert / CLS keys of the published fork
 * (haomin1010/lerobot) when the configuration uses them. Everything else — the backbone dimensions
 * (`vlm_backbone`, which Python fetches from the hub by `vlm_model_name` instead) and fork keys of a
 * configuration that does not use the delta expert — goes to `smolvla_node.json` beside it, which
 * Python never opens and which this project merges back when reading.
 */

/** The side file's name. */
export const SIDE_CONFIG_FILE = 'smolvla_node.json';

/** Fields of LeRobot's `PreTrainedConfig` base class (`configs/policies.py`). */
const PRETRAINED_CONFIG_KEYS = [
  'n_obs_steps',
  'input_features',
  'output_features',
  'device',
  'use_amp',
  'use_peft',
  'push_to_hub',
  'repo_id',
  'private',
  'tags',
  'license',
  'pretrained_path',
  'pretrained_revision',
] as const;

/** Fields of upstream LeRobot's `SmolVLAConfig` (`policies/smolvla/configuration_smolvla.py`). */
const SMOLVLA_CONFIG_KEYS = [
  'chunk_size',
  'n_action_steps',
  'normalization_mapping',
  'max_state_dim',
  'max_action_dim',
  'resize_imgs_with_padding',
  'empty_cameras',
  'adapt_to_pi_aloha',
  'use_delta_joint_actions_aloha',
  'tokenizer_max_length',
  'num_steps',
  'use_cache',
  'freeze_vision_encoder',
  'train_expert_only',
  'train_state_proj',
  'optimizer_lr',
  'optimizer_betas',
  'optimizer_eps',
  'optimizer_weight_decay',
  'optimizer_grad_clip_norm',
  'scheduler_warmup_steps',
  'scheduler_decay_steps',
  'scheduler_decay_lr',
  'vlm_model_name',
  'load_vlm_weights',
  'add_image_special_tokens',
  'attention_mode',
  'prefix_length',
  'pad_language_to',
  'num_expert_layers',
  'num_vlm_layers',
  'self_attn_every_n_layers',
  'expert_width_multiplier',
  'min_period',
  'max_period',
  'rtc_config',
  'compile_model',
  'compile_mode',
] as const;

/** Keys the delta-expert fork adds to `SmolVLAConfig`. */
export const FORK_CONFIG_KEYS = [
  'train_delta_expert',
  'use_cls_head',
  'num_cls_prefix',
  'num_cls_suffix',
  'vicreg_weight',
  'vicreg_lambda',
  'vicreg_mu',
  'vicreg_nu',
  'cls_noise_scale',
  'cls_similarity_threshold',
  'load_expert_weights',
] as const;

/** Every key upstream LeRobot accepts in a SmolVLA `config.json` (besides `type`). */
export const LEROBOT_CONFIG_KEYS: ReadonlySet<string> = new Set<string>([...PRETRAINED_CONFIG_KEYS, ...SMOLVLA_CONFIG_KEYS]);

/** True when the configuration needs the fork (delta expert trained or CLS head used). */
function usesFork(json: Record<string, unknown>): boolean {
  return json.train_delta_expert === true || json.use_cls_head === true;
}

export interface SplitConfig {
  /** What goes into config.json (`type` first). */
  lerobot: Record<string, unknown>;
  /** What goes into the side file. */
  side: Record<string, unknown>;
}

/**
 * Splits a full config object (configToJson's output) into LeRobot's config.json and the side file.
 * The fork's keys go into config.json only when the configuration uses the delta expert or CLS head:
 * then Python needs the fork anyway, and the fork knows them.
 */
export function splitConfigJson(full: Record<string, unknown>): SplitConfig {
  const fork = usesFork(full);
  const allowed = (key: string) => LEROBOT_CONFIG_KEYS.has(key) || (fork && (FORK_CONFIG_KEYS as readonly string[]).includes(key));
  const lerobot: Record<string, unknown> = { type: full.type ?? 'smolvla' };
  const side: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(full)) {
    if (key === 'type') continue;
    if (allowed(key)) lerobot[key] = value;
    else side[key] = value;
  }
  return { lerobot, side };
}

/**
 * The full config object from config.json and the side file (null when absent). config.json wins
 * where both have a key: a user who edited config.json by hand meant it.
 */
export function mergeConfigJson(lerobot: Record<string, unknown>, side: Record<string, unknown> | null): Record<string, unknown> {
  return side === null ? lerobot : { ...side, ...lerobot };
}
