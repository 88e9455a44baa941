/** SmolVLA configuration: LeRobot config.json <-> typed config, backbone dimensions, validation, derived dims. */
export {
  CONFIG_DEFAULTS,
  CONFIG_FIELD_NAMES,
  FEATURE_TYPES,
  NORMALIZATION_MODES,
  PAD_LANGUAGE_TO,
  type ConfigFields,
  type Features,
  type FeatureType,
  type NormalizationMapping,
  type NormalizationMode,
  type PadLanguageTo,
  type PolicyFeature,
  type SmolVLAConfig,
} from './schema';
export {
  SMOLVLM2_500M,
  SMOLVLM2_500M_BACKBONE,
  decodeVlmBackbone,
  readHfBackbone,
  resolveBackbone,
  vlmBackboneToJson,
  type TextBackbone,
  type VisionBackbone,
  type VlmBackbone,
} from './backbone';
export { camelToSnake, snakeToCamel } from './decode';
export { configToJson, defaultConfig, parseConfig, readConfig, writeConfig } from './json';
export { FORK_CONFIG_KEYS, LEROBOT_CONFIG_KEYS, SIDE_CONFIG_FILE, splitConfigJson } from './lerobot';
export { checkExtraKeys, validateConfig } from './validate';
export { actionDim, cameraKeys, expertIntermediateSize, resolveDims, stateDim, type ResolvedDims } from './dims';
