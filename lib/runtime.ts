/** Process-wide libtorch settings: threads, devices, seeds, and what the addon was built with. */
import { argumentError } from './errors';
import { native, type NativeBuildInfo, type NativeGemmRoutes } from './native';
import { choiceArg, intArg, numberArg } from './util/args';

/** Largest matrix side matmulThroughput measures (a 16384² float32 operand is 1 GiB). */
const MAX_MATMUL_SIDE = 16384;
/** Longest matmulThroughput measurement: it blocks the calling thread for that long. */
const MAX_MATMUL_SECONDS = 60;
import { Tensor } from './tensor';

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

/** libtorch's CPU generator state: the bytes Python's `torch.get_rng_state()` returns. */
export function cpuRngState(): Tensor {
  return new Tensor(native.cpuRngState());
}

export function buildInfo(): NativeBuildInfo {
  return native.buildInfo();
}

/**
 * CPU GEMM routes: libtorch's linear and matmul, and oneDNN's matmul reading the weight in place or
 * a blocked copy made once ("packed"; only where oneDNN 2.x is present, see gemmRoutes()).
 */
export const GEMM_ROUTES = ['aten-linear', 'aten-matmul', 'onednn-plain', 'onednn-packed'] as const;
export type GemmRoute = (typeof GEMM_ROUTES)[number];

/**
 * Measured GEMM throughput (GFLOP/s) of an (m, k) x (k, n) product in `dtype` through one GEMM
 * route (default libtorch's linear), with the current thread count (CPU) or on `device` ('cuda:N',
 * aten-linear only): one probe of the roof benchmarks compare against. An allocation that does not
 * fit throws with code ERR_SMOLVLA_OOM.
 */
export function matmulThroughput(
  m: number,
  k: number,
  n: number,
  dtype: 'float32' | 'bfloat16' = 'float32',
  seconds = 1,
  device = 'cpu',
  route: GemmRoute = 'aten-linear',
): number {
  intArg('m', m, 1, MAX_MATMUL_SIDE);
  intArg('k', k, 1, MAX_MATMUL_SIDE);
  intArg('n', n, 1, MAX_MATMUL_SIDE);
  choiceArg('dtype', dtype, ['float32', 'bfloat16'] as const);
  numberArg('seconds', seconds, { min: 0, max: MAX_MATMUL_SECONDS });
  choiceArg('route', route, GEMM_ROUTES);
  return native.matmulThroughput(m, k, n, dtype, seconds, resolveDevice(device), route);
}

/**
 * The CPU GEMM routes available here and the ones the model chose (per dtype, prefix and decode):
 * chosen at a model's first projection by a short probe of every route, or forced with the
 * environment variable SMOLVLA_GEMM=<route>.
 */
export function gemmRoutes(): NativeGemmRoutes & { available: GemmRoute[] } {
  const r = native.gemmRoutes();
  return { ...r, available: r.available.filter((name): name is GemmRoute => (GEMM_ROUTES as readonly string[]).includes(name)) };
}

/**
 * Pins the CPU GEMM route of every model's projections (process-wide; 'auto' returns to the probe's
 * choice). 'lean' is the memory-lean plan: oneDNN reads every weight in place except in the action
 * expert's denoising passes, which keep packed copies (full-size bfloat16: 187 MiB of copies instead
 * of 886, ~8 % more time per chunk; also SMOLVLA_GEMM=lean). Throws ERR_SMOLVLA_ARGUMENT for a route
 * this build or machine lacks (gemmRoutes().available; 'lean' needs oneDNN).
 */
export function setGemmRoute(route: GemmRoute | 'lean' | 'auto'): void {
  choiceArg('route', route, [...GEMM_ROUTES, 'lean', 'auto'] as const);
  native.setGemmRoute(route);
}
