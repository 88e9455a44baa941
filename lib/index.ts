/** smolvla-node: SmolVLA with a delta expert and a CLS head, on a libtorch core. */
export { Tensor, disposeAll, type DType, type TensorData } from './tensor';
export * as ops from './ops';
export { readSafetensors, writeSafetensors, type SafetensorsContent } from './safetensors';
export { setNumThreads, getNumThreads, resolveDevice, cudaDeviceCount, manualSeed, buildInfo, matmulThroughput, gemmRoutes, setGemmRoute, GEMM_ROUTES, type GemmRoute } from './runtime';
export * from './config';
export * from './model';
export * from './policy';
export * from './serving';
export * from './report';
export * as training from './train';
export * as data from './data';
export { SmolVLAError, argumentError, type ErrorCode } from './errors';
