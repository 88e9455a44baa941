/** Process-wide libtorch settings: threads, devices, seeds, and what the addon was built with. */
import { native, type NativeBuildInfo } from './native';
import { Tensor } from './tensor';

/** Intra-op threads used by libtorch (process-wide). Benchmarks set it for both sides. */
export function setNumThreads(threads: number): void {
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
  return native.checkDevice(device);
}

export function cudaDeviceCount(): number {
  return native.cudaDeviceCount();
}

/** Seeds libtorch's global generators (CPU and CUDA). */
export function manualSeed(seed: number): void {
  native.manualSeed(seed);
}

/** libtorch's CPU generator state: the bytes Python's `torch.get_rng_state()` returns. */
export function cpuRngState(): Tensor {
  return new Tensor(native.cpuRngState());
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
  return native.matmulThroughput(m, k, n, dtype, seconds, device);
}
