/**
 * Semantic checks of a SmolVLAConfig (ranges and cross-field rules), so that a bad
 * value fails at construction with a message naming its config.json key, not as a shape error deep
 * inside the model. All problems are reported at once.
 */
import { camelToSnake } from './decode';
import {
  CONFIG_FIELD_NAMES,
  FEATURE_TYPES,
  NORMALIZATION_MODES,
  PAD_LANGUAGE_TO,
  RESERVED_KEYS,
  type Features,
  type SmolVLAConfig,
} from './schema';
import { SmolVLAError } from '../errors';

/** Rejects `extra` keys that are modelled fields or reserved (they would be shadowed on writing). */
export function checkExtraKeys(extra: Record<string, unknown>): void {
  const modelled = new Set<string>([...CONFIG_FIELD_NAMES.map(camelToSnake), ...RESERVED_KEYS]);
  const clash = Object.keys(extra).find((k) => modelled.has(k));
  if (clash !== undefined) throw new SmolVLAError('ERR_SMOLVLA_CONFIG', `extra["${clash}"]: "${clash}" is a modelled key; set the field itself, not extra`);
}

const show = (v: unknown): string => JSON.stringify(v) ?? String(v);

/**
 * Upper bounds of every count and dimension. Far above any SmolVLA/SmolVLM configuration (the
 * largest published backbones stay below a quarter of each), low enough that a corrupt or hostile
 * config.json fails here, naming the key and the bound, instead of hanging the main thread or
 * asking the allocator for terabytes.
 */
export const CONFIG_LIMITS = {
  /** Observation history, chunk length, flow-matching steps. */
  steps: 4096,
  /** State/action padding and feature sizes. */
  vector: 1 << 16,
  /** Image width/height in pixels (also the vision tower's image_size). */
  imageSide: 8192,
  /** Cameras: image features plus empty_cameras. */
  cameras: 64,
  /** Language tokens (tokenizer_max_length, prefix_length): attention is quadratic in them. */
  tokens: 8192,
  /** Vision patches per image (SmolVLA: 32 x 32): vision attention is quadratic in them. */
  patches: 128 * 128,
  /** Transformer layers of any tower. */
  layers: 512,
  /** Hidden sizes and head dimensions. */
  width: 1 << 16,
  /** MLP sizes and vocabulary. */
  wide: 1 << 20,
  /** Attention heads, patch size, scale factor, CLS tokens. */
  small: 1024,
  /** Model parameters the whole config implies (a float32 copy is 4 bytes each). */
  parameters: 16e9,
} as const;

/** Throws one Error listing every problem; returns the config unchanged when it is valid. */
export function validateConfig(config: SmolVLAConfig): SmolVLAConfig {
  const problems: string[] = [];
  const check = (ok: boolean, message: string): boolean => {
    if (!ok) problems.push(message);
    return ok;
  };
  const int = (key: string, v: number, min: number, max: number = Number.MAX_SAFE_INTEGER): boolean =>
    check(
      Number.isSafeInteger(v) && v >= min && v <= max,
      max === Number.MAX_SAFE_INTEGER
        ? `${key} must be an integer >= ${min}, received ${show(v)}`
        : `${key} must be an integer in [${min}, ${max}], received ${show(v)}`,
    );
  const real = (key: string, v: number, what: 'positive' | 'non-negative'): boolean =>
    check(
      Number.isFinite(v) && (what === 'positive' ? v > 0 : v >= 0),
      `${key} must be a ${what} number, received ${show(v)}`,
    );
  const anyInt = (key: string, v: number, bound: number): boolean =>
    check(Number.isSafeInteger(v) && Math.abs(v) <= bound, `${key} must be an integer in [${-bound}, ${bound}], received ${show(v)}`);
  const L = CONFIG_LIMITS;
  const c = config;

  // Structure.
  int('n_obs_steps', c.nObsSteps, 1, L.steps);
  const chunkOk = int('chunk_size', c.chunkSize, 1, L.steps);
  if (int('n_action_steps', c.nActionSteps, 1, L.steps) && chunkOk) {
    check(c.nActionSteps <= c.chunkSize, `n_action_steps (${c.nActionSteps}) must be <= chunk_size (${c.chunkSize})`);
  }
  int('max_state_dim', c.maxStateDim, 1, L.vector);
  int('max_action_dim', c.maxActionDim, 1, L.vector);
  const resize = c.resizeImgsWithPadding;
  const resizeOk = check(
    Array.isArray(resize) && resize.length === 2 && resize.every((v) => Number.isSafeInteger(v) && v > 0 && v <= L.imageSide),
    `resize_imgs_with_padding must be two integers [width, height] in [1, ${L.imageSide}], received ${show(resize)}`,
  );
  if (int('empty_cameras', c.emptyCameras, 0, L.cameras) && typeof c.inputFeatures === 'object' && c.inputFeatures !== null) {
    const visual = Object.values(c.inputFeatures).filter((f) => f?.type === 'VISUAL').length;
    check(
      visual + c.emptyCameras <= L.cameras,
      `input_features has ${visual} VISUAL features and empty_cameras is ${c.emptyCameras}: at most ${L.cameras} cameras in all`,
    );
  }
  check(
    !c.useDeltaJointActionsAloha,
    'use_delta_joint_actions_aloha: true is not supported (LeRobot does not implement it either); set it to false',
  );
  check(
    !c.adaptToPiAloha,
    "adapt_to_pi_aloha: true is not supported here (LeRobot flips ALOHA joint signs and maps gripper positions into pi's " +
      'internal space around the model); set it to false and give states and actions in the space the model was trained in',
  );
  int('tokenizer_max_length', c.tokenizerMaxLength, 1, L.tokens);
  check(
    (PAD_LANGUAGE_TO as readonly string[]).includes(c.padLanguageTo),
    `pad_language_to must be "longest" or "max_length", received ${show(c.padLanguageTo)}`,
  );
  int('num_steps', c.numSteps, 1, L.steps);
  check(c.useCache, 'use_cache: false is not supported (the published sampler crashes without the prefix cache); set it to true');
  anyInt('prefix_length', c.prefixLength, L.tokens);
  check(typeof c.attentionMode === 'string', `attention_mode must be a string, received ${show(c.attentionMode)}`);
  anyInt('self_attn_every_n_layers', c.selfAttnEveryNLayers, L.layers);
  real('min_period', c.minPeriod, 'positive');
  real('max_period', c.maxPeriod, 'positive');
  check(typeof c.vlmModelName === 'string', `vlm_model_name must be a string, received ${show(c.vlmModelName)}`);
  checkFeatures('input_features', c.inputFeatures, check);
  checkFeatures('output_features', c.outputFeatures, check);
  const stateDim = c.inputFeatures?.['observation.state']?.shape?.at(-1);
  if (stateDim !== undefined) {
    check(stateDim <= c.maxStateDim, `input_features["observation.state"] has ${stateDim} dims, more than max_state_dim (${c.maxStateDim})`);
  }
  const actionDim = c.outputFeatures?.action?.shape?.at(-1);
  if (actionDim !== undefined) {
    check(actionDim <= c.maxActionDim, `output_features["action"] has ${actionDim} dims, more than max_action_dim (${c.maxActionDim})`);
  }
  for (const [type, mode] of Object.entries(c.normalizationMapping ?? {})) {
    check((FEATURE_TYPES as readonly string[]).includes(type), `normalization_mapping: unknown feature type ${show(type)} (known: ${FEATURE_TYPES.join(', ')})`);
    check(
      (NORMALIZATION_MODES as readonly string[]).includes(mode),
      `normalization_mapping["${type}"]: unknown mode ${show(mode)} (known: ${NORMALIZATION_MODES.join(', ')})`,
    );
  }

  // Training presets.
  real('optimizer_lr', c.optimizerLr, 'positive');
  check(
    Array.isArray(c.optimizerBetas) && c.optimizerBetas.length === 2 && c.optimizerBetas.every((b) => Number.isFinite(b) && b >= 0 && b < 1),
    `optimizer_betas must be two numbers in [0, 1), received ${show(c.optimizerBetas)}`,
  );
  real('optimizer_eps', c.optimizerEps, 'positive');
  real('optimizer_weight_decay', c.optimizerWeightDecay, 'non-negative');
  real('optimizer_grad_clip_norm', c.optimizerGradClipNorm, 'positive');
  int('scheduler_warmup_steps', c.schedulerWarmupSteps, 0);
  int('scheduler_decay_steps', c.schedulerDecaySteps, 1);
  real('scheduler_decay_lr', c.schedulerDecayLr, 'non-negative');

  // Delta expert and CLS head.
  const prefixOk = int('num_cls_prefix', c.numClsPrefix, 1, L.small);
  const suffixOk = int('num_cls_suffix', c.numClsSuffix, 1, L.small);
  if (c.useClsHead && prefixOk && suffixOk) {
    check(
      c.numClsPrefix === c.numClsSuffix,
      `num_cls_prefix (${c.numClsPrefix}) and num_cls_suffix (${c.numClsSuffix}) must be equal when use_cls_head is true: ` +
        'VICReg compares prefix and suffix CLS tokens pairwise',
    );
    for (const [key, n] of [['num_cls_prefix', c.numClsPrefix], ['num_cls_suffix', c.numClsSuffix]] as const) {
      check(
        n >= 2 && n <= 4,
        `${key} must be in 2..4 when use_cls_head is true, received ${n}: the similarity rule reads CLS tokens 0 and 1, ` +
          "so the seeds' range 1..4 is narrowed to 2..4",
      );
    }
  }
  for (const key of ['vicregWeight', 'vicregLambda', 'vicregMu', 'vicregNu', 'clsNoiseScale'] as const) {
    real(camelToSnake(key), c[key], 'non-negative');
  }
  check(
    Number.isFinite(c.clsSimilarityThreshold) && c.clsSimilarityThreshold >= 0 && c.clsSimilarityThreshold <= 1,
    `cls_similarity_threshold must be in [0, 1], received ${show(c.clsSimilarityThreshold)}`,
  );

  // Backbone and the dimensions derived from it.
  const backboneOk = checkBackbone(c, check, int, real);
  anyInt('num_vlm_layers', c.numVlmLayers, L.layers);
  anyInt('num_expert_layers', c.numExpertLayers, L.layers);
  const widthOk =
    real('expert_width_multiplier', c.expertWidthMultiplier, 'positive') &&
    check(c.expertWidthMultiplier <= 16, `expert_width_multiplier must be <= 16, received ${show(c.expertWidthMultiplier)}`);
  if (backboneOk) {
    const text = c.vlmBackbone.textConfig;
    check(
      c.numVlmLayers <= text.numHiddenLayers,
      `num_vlm_layers (${c.numVlmLayers}) must be <= the backbone's text_config.num_hidden_layers (${text.numHiddenLayers})`,
    );
    const kept = c.numVlmLayers > 0 ? c.numVlmLayers : text.numHiddenLayers;
    if (c.numExpertLayers > 0) {
      check(
        kept % c.numExpertLayers === 0,
        `num_vlm_layers (${kept} kept VLM layers) must be a multiple of num_expert_layers (${c.numExpertLayers})`,
      );
    }
    if (widthOk) {
      // The sinusoidal time embedding splits the expert width into sines and cosines (LeRobot requires it even).
      const expertHidden = Math.trunc(text.hiddenSize * c.expertWidthMultiplier);
      check(
        expertHidden >= 2 && expertHidden % 2 === 0,
        `expert_width_multiplier (${c.expertWidthMultiplier}) gives an expert hidden size of ${expertHidden} ` +
          `(int(${text.hiddenSize} * ${c.expertWidthMultiplier})); it must be even and >= 2`,
      );
    }
    const parameters = widthOk ? estimateParameters(c) : 0;
    check(
      parameters <= L.parameters,
      `vlm_backbone, num_vlm_layers and expert_width_multiplier describe a model of about ${parameters.toExponential(2)} ` +
        `parameters, more than the limit of ${L.parameters / 1e9} billion`,
    );
    if (resizeOk) {
      const { patchSize } = c.vlmBackbone.visionConfig;
      const scale = c.vlmBackbone.scaleFactor;
      const [width, height] = resize;
      const gridW = Math.floor(width / patchSize);
      const gridH = Math.floor(height / patchSize);
      check(
        gridW * gridH <= L.patches,
        `resize_imgs_with_padding [${width}, ${height}] gives ${gridW * gridH} patches per image (patch_size ${patchSize}), ` +
          `more than ${L.patches}: vision attention is quadratic in them`,
      );
      check(
        gridW === gridH && gridW > 0 && gridW % scale === 0,
        `resize_imgs_with_padding [${width}, ${height}] gives a ${gridH} x ${gridW} patch grid (patch_size ${patchSize}); ` +
          `the connector's pixel shuffle needs a square grid divisible by scale_factor (${scale})`,
      );
    }
  }

  check(typeof c.extra === 'object' && c.extra !== null && !Array.isArray(c.extra), `extra must be an object, received ${show(c.extra)}`);
  if (problems.length === 0) checkExtraKeys(c.extra);
  if (problems.length > 0) throw new SmolVLAError('ERR_SMOLVLA_CONFIG', `invalid SmolVLA config:\n- ${problems.join('\n- ')}`);
  return config;
}

type Check = (ok: boolean, message: string) => boolean;

/**
 * A rough parameter count (attention + MLP per layer, embeddings): enough to refuse a config whose
 * dimensions are each in bounds but together would need terabytes.
 */
function estimateParameters(c: SmolVLAConfig): number {
  const t = c.vlmBackbone.textConfig;
  const v = c.vlmBackbone.visionConfig;
  const layer = (hidden: number, mlp: number): number => 4 * hidden * hidden + 3 * hidden * mlp;
  const textLayers = c.numVlmLayers > 0 ? c.numVlmLayers : t.numHiddenLayers;
  const expert = Math.trunc(t.hiddenSize * c.expertWidthMultiplier);
  const expertLayers = c.numExpertLayers > 0 ? c.numExpertLayers : textLayers;
  return (
    t.vocabSize * t.hiddenSize +
    textLayers * layer(t.hiddenSize, t.intermediateSize) +
    v.numHiddenLayers * layer(v.hiddenSize, v.intermediateSize) +
    (v.imageSize / v.patchSize) ** 2 * v.hiddenSize +
    2 * expertLayers * layer(expert, 4 * expert)
  );
}

function checkFeatures(key: string, features: Features, check: Check): void {
  if (!check(typeof features === 'object' && features !== null, `${key} must be an object, received ${show(features)}`)) return;
  const entries = Object.entries(features);
  if (!check(entries.length <= CONFIG_LIMITS.cameras * 2, `${key} has ${entries.length} features, more than ${CONFIG_LIMITS.cameras * 2}`)) return;
  for (const [name, f] of entries) {
    check(
      (FEATURE_TYPES as readonly string[]).includes(f?.type),
      `${key}["${name}"].type must be one of ${FEATURE_TYPES.join(', ')}, received ${show(f?.type)}`,
    );
    check(
      Array.isArray(f?.shape) && f.shape.length <= 8 && f.shape.every((d) => Number.isSafeInteger(d) && d > 0 && d <= CONFIG_LIMITS.vector),
      `${key}["${name}"].shape must be at most 8 integers in [1, ${CONFIG_LIMITS.vector}], received ${show(f?.shape)}`,
    );
  }
}

function checkBackbone(
  c: SmolVLAConfig,
  check: Check,
  int: (key: string, v: number, min: number, max?: number) => boolean,
  real: (key: string, v: number, what: 'positive' | 'non-negative') => boolean,
): boolean {
  const b = c.vlmBackbone;
  if (!check(typeof b === 'object' && b !== null && !!b.textConfig && !!b.visionConfig, 'vlm_backbone must hold text_config and vision_config')) {
    return false;
  }
  const t = b.textConfig;
  const v = b.visionConfig;
  const at = (part: string, key: string): string => `vlm_backbone.${part}.${camelToSnake(key)}`;
  let ok = true;
  const L = CONFIG_LIMITS;
  const textBounds = { vocabSize: L.wide, hiddenSize: L.width, intermediateSize: L.wide, numHiddenLayers: L.layers, numAttentionHeads: L.small, numKeyValueHeads: L.small, headDim: L.width } as const;
  for (const [key, max] of Object.entries(textBounds) as [keyof typeof textBounds, number][]) {
    ok = int(at('text_config', key), t[key], 1, max) && ok;
  }
  const visionBounds = { hiddenSize: L.width, intermediateSize: L.wide, numHiddenLayers: L.layers, numAttentionHeads: L.small, patchSize: L.small, imageSize: L.imageSide } as const;
  for (const [key, max] of Object.entries(visionBounds) as [keyof typeof visionBounds, number][]) {
    ok = int(at('vision_config', key), v[key], 1, max) && ok;
  }
  ok = int('vlm_backbone.scale_factor', b.scaleFactor, 1, L.small) && ok;
  ok = real('vlm_backbone.text_config.rms_norm_eps', t.rmsNormEps, 'positive') && ok;
  ok = real('vlm_backbone.vision_config.layer_norm_eps', v.layerNormEps, 'positive') && ok;
  ok = check(!t.attentionBias, 'vlm_backbone.text_config.attention_bias: true is not supported (SmolVLM has no attention biases)') && ok;
  if (!ok) return false;
  // Grouped-query attention maps query head h to key/value head floor(h * Hkv / H).
  ok = check(
    t.numAttentionHeads % t.numKeyValueHeads === 0,
    `vlm_backbone.text_config.num_attention_heads (${t.numAttentionHeads}) must be a multiple of num_key_value_heads (${t.numKeyValueHeads})`,
  ) && ok;
  // RoPE rotates the two halves of each head.
  ok = check(t.headDim % 2 === 0, `vlm_backbone.text_config.head_dim must be even (RoPE), received ${t.headDim}`) && ok;
  ok = check(
    v.hiddenSize % v.numAttentionHeads === 0,
    `vlm_backbone.vision_config.hidden_size (${v.hiddenSize}) must be a multiple of num_attention_heads (${v.numAttentionHeads})`,
  ) && ok;
  ok = check(
    v.imageSize % v.patchSize === 0,
    `vlm_backbone.vision_config.image_size (${v.imageSize}) must be a multiple of patch_size (${v.patchSize}): the position embeddings cover a whole patch grid`,
  ) && ok;
  return ok;
}
