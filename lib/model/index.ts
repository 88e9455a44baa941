export { SmolVLAModel, type Observation, type ModelOptions, type LoadOptions, type LoadReport, type ModelDtype, type TensorDict } from './model';
export { KVCache } from './cache';
export { type Cancellable } from './cancel';
export { toNativeConfig, actionDim, stateDim, type TokenIds } from './nativeConfig';
export { checkpointFolder, hubIdMessage } from './localFolder';
