export {
  SmolVLAModel,
  type Observation,
  type ModelOptions,
  type LoadOptions,
  type LoadReport,
  type ModelDtype,
  type ModelInfo,
  type TensorDict,
  type TokenIds,
} from './model';
export { KVCache } from './cache';
export { type Cancellable } from './cancel';
export { rtcPrefixWeights, rtcGuidanceWeight, PREFIX_SCHEDULES, type PrefixSchedule, type RtcOptions } from './rtc';
export { checkpointFolder, hubIdMessage } from './localFolder';
