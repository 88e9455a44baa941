/**
 * The SmolVLA configuration: LeRobot's `config.json` keys in camelCase, with their defaults.
 * `vlmBackbone` holds the backbone dimensions; `extra` keeps the config.json keys this
 * project does not model (LeRobot's `device`, `push_to_hub`, `rtc_config`, …) so writing gives them back.
 */
import { SMOLVLM2_500M, type VlmBackbone } from './backbone';

/** LeRobot's FeatureType. */
export const FEATURE_TYPES = ['STATE', 'VISUAL', 'ENV', 'ACTION', 'REWARD', 'LANGUAGE'] as const;
export type FeatureType = (typeof FEATURE_TYPES)[number];

/** LeRobot's NormalizationMode (QUANTILES / QUANTILE10 exist in newer LeRobot). */
export const NORMALIZATION_MODES = ['MIN_MAX', 'MEAN_STD', 'IDENTITY', 'QUANTILES', 'QUANTILE10'] as const;
export type NormalizationMode = (typeof NORMALIZATION_MODES)[number];

export const PAD_LANGUAGE_TO = ['longest', 'max_length'] as const;
export type PadLanguageTo = (typeof PAD_LANGUAGE_TO)[number];

/** LeRobot's PolicyFeature, e.g. `{ type: 'VISUAL', shape: [3, 480, 640] }`. */
export interface PolicyFeature {
  type: FeatureType;
  shape: number[];
}
export type Features = Record<string, PolicyFeature>;
export type NormalizationMapping = Partial<Record<FeatureType, NormalizationMode>>;

export interface SmolVLAConfig {
  // Structure.
  nObsSteps: number;
  chunkSize: number;
  nActionSteps: number;
  maxStateDim: number;
  maxActionDim: number;
  /** (width, height) of the padded image fed to the vision encoder. */
  resizeImgsWithPadding: [number, number];
  emptyCameras: number;
  adaptToPiAloha: boolean;
  /** Kept for LeRobot compatibility; true is rejected (not supported, as in LeRobot). */
  useDeltaJointActionsAloha: boolean;
  tokenizerMaxLength: number;
  padLanguageTo: PadLanguageTo;
  numSteps: number;
  useCache: boolean;
  prefixLength: number;
  addImageSpecialTokens: boolean;
  /** Cross-attention layers are used when the string contains "cross" (as LeRobot tests it). */
  attentionMode: string;
  /** <= 0: as many expert layers as kept VLM layers. */
  numExpertLayers: number;
  /** <= 0: keep all the backbone's text layers. */
  numVlmLayers: number;
  /** <= 0: every layer is a cross-attention layer. */
  selfAttnEveryNLayers: number;
  expertWidthMultiplier: number;
  minPeriod: number;
  maxPeriod: number;
  vlmModelName: string;
  loadVlmWeights: boolean;
  loadExpertWeights: boolean;
  inputFeatures: Features;
  outputFeatures: Features;
  normalizationMapping: NormalizationMapping;
  // Training presets.
  freezeVisionEncoder: boolean;
  trainExpertOnly: boolean;
  trainStateProj: boolean;
  optimizerLr: number;
  optimizerBetas: [number, number];
  optimizerEps: number;
  optimizerWeightDecay: number;
  optimizerGradClipNorm: number;
  schedulerWarmupSteps: number;
  schedulerDecaySteps: number;
  schedulerDecayLr: number;
  // Delta expert and CLS head.
  trainDeltaExpert: boolean;
  useClsHead: boolean;
  numClsPrefix: number;
  numClsSuffix: number;
  vicregWeight: number;
  vicregLambda: number;
  vicregMu: number;
  vicregNu: number;
  clsNoiseScale: number;
  clsSimilarityThreshold: number;
  // Not LeRobot keys.
  vlmBackbone: VlmBackbone;
  /** config.json keys not modelled here, written back unchanged (snake_case, as read). */
  extra: Record<string, unknown>;
}

/** The fields stored under their own config.json key (everything but the backbone and `extra`). */
export type ConfigFields = Omit<SmolVLAConfig, 'vlmBackbone' | 'extra'>;

/** Defaults (= LeRobot's where LeRobot has the key). */
const defaults: ConfigFields = {
  nObsSteps: 1,
  chunkSize: 50,
  nActionSteps: 50,
  maxStateDim: 32,
  maxActionDim: 32,
  resizeImgsWithPadding: [512, 512],
  emptyCameras: 0,
  adaptToPiAloha: false,
  useDeltaJointActionsAloha: false,
  tokenizerMaxLength: 48,
  padLanguageTo: 'longest',
  numSteps: 10,
  useCache: true,
  prefixLength: -1,
  addImageSpecialTokens: false,
  attentionMode: 'cross_attn',
  numExpertLayers: -1,
  numVlmLayers: 16,
  selfAttnEveryNLayers: 2,
  expertWidthMultiplier: 0.75,
  minPeriod: 4e-3,
  maxPeriod: 4.0,
  vlmModelName: SMOLVLM2_500M,
  loadVlmWeights: false,
  loadExpertWeights: false,
  inputFeatures: {},
  outputFeatures: {},
  normalizationMapping: { VISUAL: 'IDENTITY', STATE: 'MEAN_STD', ACTION: 'MEAN_STD' },
  freezeVisionEncoder: true,
  trainExpertOnly: true,
  trainStateProj: true,
  optimizerLr: 1e-4,
  optimizerBetas: [0.9, 0.95],
  optimizerEps: 1e-8,
  optimizerWeightDecay: 1e-10,
  optimizerGradClipNorm: 10,
  schedulerWarmupSteps: 1000,
  schedulerDecaySteps: 30000,
  schedulerDecayLr: 2.5e-6,
  trainDeltaExpert: false,
  useClsHead: false,
  numClsPrefix: 2,
  numClsSuffix: 2,
  vicregWeight: 0.01,
  vicregLambda: 25.0,
  vicregMu: 25.0,
  vicregNu: 1.0,
  clsNoiseScale: 0.01,
  clsSimilarityThreshold: 0.5,
};
export const CONFIG_DEFAULTS: Readonly<ConfigFields> = Object.freeze(defaults);

/** The modelled fields' names; each one's config.json key is its snake_case form (camelToSnake). */
export const CONFIG_FIELD_NAMES = Object.keys(CONFIG_DEFAULTS) as (keyof ConfigFields)[];

/** config.json keys with a meaning of their own besides the modelled fields. */
export const RESERVED_KEYS: readonly string[] = ['type', 'vlm_backbone'];
