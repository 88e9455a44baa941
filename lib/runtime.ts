/** Process-wide libtorch settings: threads, devices, seeds, and what the addon was built with. */
import { argumentError } from './errors';
import { native, type NativeBuildInfo } from './native';
import { choiceArg, intArg, numberArg } from './util/args';

/** Largest matrix side matmulThroughput measures (a 16384² float32 operand is 1 GiB). */
const MAX_MATMUL_SIDE = 16384;
/** Longest matmulThroughput measurement: it blocks the calling thread for that long. */
const MAX_MATMUL_SECONDS = 60;

/** Intra-op threads used by libtorch (process-wide). Benchmarks set it for both sides. */
export function setNumThreads(threads: number): void {
  intArg('threads', threads, 1, 1024);
  native.setNumThreads(threads);
}

export function getNumThreads(): number {
  return native.getNumThreads();
}

/**
 * Validates a device string and returns its canonical form ('cpu', 'cuda', 'cuda:1'). Throws an
 * Error naming the device when CUDA is asked for and this libtorch or machine has none.
 */
export function resolveDevice(device: string): string {
  if (typeof device !== 'string') throw argumentError('device', "a device string ('cpu', 'cuda', 'cuda:N')", device);
  return native.checkDevice(device);
}

export function cudaDeviceCount(): number {
  return native.cudaDeviceCount();
}

/** Seeds libtorch's global generators (CPU and CUDA). */
export function manualSeed(seed: number): void {
  intArg('seed', seed, 0, Number.MAX_SAFE_INTEGER);
  native.manualSeed(seed);
}

export function buildInfo(): NativeBuildInfo {
  return native.buildInfo();
}

/**
 * Measured GEMM throughput (GFLOP/s) of an (m, k) x (k, n) product in `dtype` through libtorch's
 * linear, with the current thread count (CPU) or on `device` ('cuda:N'): the roof benchmarks
 * compare against. An allocation that does not fit throws with code ERR_SMOLVLA_OOM.
 */
export function matmulThroughput(m: number, k: number, n: number, dtype: 'float32' | 'bfloat16' = 'float32', seconds = 1, device = 'cpu'): number {
  intArg('m', m, 1, MAX_MATMUL_SIDE);
  intArg('k', k, 1, MAX_MATMUL_SIDE);
  intArg('n', n, 1, MAX_MATMUL_SIDE);
  choiceArg('dtype', dtype, ['float32', 'bfloat16'] as const);
  numberArg('seconds', seconds, { min: 0, max: MAX_MATMUL_SECONDS });
  if (typeof device !== 'string') throw argumentError('device', "a device string ('cpu', 'cuda', 'cuda:N')", device);
  return native.matmulThroughput(m, k, n, dtype, seconds, device);
}
