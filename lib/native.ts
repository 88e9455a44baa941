/**
 * Loads the native addon (the local build or the prebuild matching the libtorch found, see
 * scripts/load-addon.js) and declares its raw interface. Everything else in lib/ goes through the typed wrappers, never through this file's
 * loose types directly.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SmolVLAError } from './errors';

/** The native tensor handle (native/napi/tensor_wrap.cc). */
export interface NativeTensor {
  readonly shape: number[];
  readonly dtype: string;
  readonly device: string;
  readonly disposed: boolean;
  dispose(): void;
  data(): ArrayBuffer;
  to(dtype?: string | null, device?: string | null): NativeTensor;
  describe(): string;
}

export interface NativeVicreg {
  loss: NativeTensor;
  invariance: NativeTensor;
  variance: NativeTensor;
  covariance: NativeTensor;
  gradZ1?: NativeTensor;
  gradZ2?: NativeTensor;
}

export interface NativeGemmRoutes {
  /** CPU GEMM routes this build and machine offer (see GEMM_ROUTES in lib/runtime.ts). */
  available: string[];
  /** The route the model's projections took per dtype (prefix and decode), and where oneDNN came from. */
  report: string;
  /** Bytes held by oneDNN's blocked weight copies. */
  packedBytes: number;
}

export interface NativeBuildInfo {
  torchVersion: string;
  torchSource: string;
  cudaCompiled: boolean;
  mkldnn: boolean;
  parallel: string;
  /** 'avx512' when the vision attention uses the AVX-512 kernels (SMOLVLA_ATTENTION=aten forces 'aten'). */
  attentionKernel: 'avx512' | 'aten';
  /** 'avx512' when RoPE, SiLU·up and RMSNorm run as one-pass kernels (SMOLVLA_POINTWISE=aten forces 'aten'). */
  pointwiseKernels: 'avx512' | 'aten';
  /** The libtorch shared library this process actually loaded. */
  torchLibrary?: string;
}

/** The observation the native model consumes: preprocessed tensors (see lib/policy for raw robot data). */
export interface NativeObservation {
  images: NativeTensor[];
  imgMasks: NativeTensor[];
  langTokens: NativeTensor;
  langMasks: NativeTensor;
  state: NativeTensor;
}

/** A feature's normalisation statistics as the native preprocessing takes them (lib/policy/normalize.ts). */
export interface NativeNormalization {
  mode: 'MEAN_STD' | 'MIN_MAX';
  /** mean or min, one per element (per channel for a camera). */
  a: Float32Array;
  /** std or max. */
  b: Float32Array;
  eps: number;
}

/** One robot's camera image, the last frame only: HWC bytes or CHW floats in [0, 1]. */
export interface NativeFrame {
  /** How errors name it (the robot and the key as the caller wrote it). */
  name: string;
  data: Uint8Array | Uint8ClampedArray | Float32Array;
  height: number;
  width: number;
  /** Bytes per pixel of HWC data (3 or 4: alpha dropped). */
  channels?: number;
  /** Layout of uint8 data: 'hwc' (default) or 'chw' (3 planes, as openpi's ALOHA clients send). */
  layout?: 'hwc' | 'chw';
}

/** One batch of robot data for native/napi/preprocess_binding.cc (every array is copied in the call). */
export interface NativeBatchRequest {
  size: number;
  width: number;
  height: number;
  /** The present cameras in the model's order: per robot a frame or null, padding-mask flags, statistics. */
  cameras: Array<{ frames: Array<NativeFrame | null>; valid: Uint8Array; norm?: NativeNormalization }>;
  emptyCameras: number;
  /** (size x stateDim) real-width states. */
  state: Float32Array;
  stateDim: number;
  maxStateDim: number;
  stateNorm?: NativeNormalization;
  /** The robots' token rows one after another, tokenLengths[i] each; tokenMask aligned with them. */
  tokens: Int32Array;
  tokenLengths: Int32Array;
  tokenMask: Uint8Array;
  padId: number;
  /** (size x chunkSize x actionDim) robot-space action targets. */
  actions?: Float32Array;
  chunkSize?: number;
  actionDim?: number;
  maxActionDim?: number;
  actionNorm?: NativeNormalization;
  actionIsPad?: Uint8Array;
}

export interface NativeBatchInputs {
  images: NativeTensor[];
  imgMasks: NativeTensor[];
  state: NativeTensor;
  langTokens: NativeTensor;
  langMasks: NativeTensor;
  actions: NativeTensor | null;
  actionIsPad: NativeTensor | null;
}

export interface NativeCache {
  readonly disposed: boolean;
  readonly batchSize: number;
  readonly prefixLength: number;
  readonly bytes: number;
  dispose(): void;
  padMasks(): NativeTensor;
  obsClsOut(): NativeTensor | null;
}

export interface NativeCancel {
  cancel(): void;
}

export type NativeTensorMap = Record<string, NativeTensor | null>;

export interface NativeLoadReport {
  loaded: string[];
  initialised: string[];
  unexpected: string[];
}

export interface NativeObjective {
  losses: NativeTensorMap;
  grads: NativeTensorMap;
  trace: NativeTensorMap;
}

/**
 * The native model (native/napi/model_wrap.cc over native/model/model.h). Every method takes one
 * parameter object and returns a Promise: the work runs on the libuv pool, one call at a time per model.
 */
export interface NativeModel {
  readonly disposed: boolean;
  /** Native bytes of the parameters and buffers, as reported to V8 (0 after dispose). */
  readonly bytes: number;
  dispose(): void;
  loadState(o: { path: string }): Promise<NativeLoadReport>;
  saveState(o: { path: string; extra?: Record<string, NativeTensor>; metadata?: Record<string, string> }): Promise<void>;
  warmStartDelta(): Promise<number>;
  to(o: { dtype?: string; device?: string }): Promise<void>;
  prefix(o: { observation: NativeObservation }): Promise<NativeCache>;
  sample(o: {
    observation?: NativeObservation;
    cache?: NativeCache;
    noise?: NativeTensor;
    cancel?: NativeCancel;
  }): Promise<{ actions: NativeTensor; cache: NativeCache | null }>;
  deltaActions(o: { cache: NativeCache; actionContext?: NativeTensor }): Promise<NativeTensor>;
  deltaStep(o: { cache: NativeCache; x: NativeTensor }): Promise<NativeTensor>;
  trace(o: { observation: NativeObservation; noise: NativeTensor }): Promise<NativeTensorMap>;
  forwardMain(o: {
    observation: NativeObservation;
    actions: NativeTensor;
    actionIsPad?: NativeTensor;
    noise?: NativeTensor;
    time?: NativeTensor;
    gradNames?: string[];
  }): Promise<NativeObjective>;
  forwardDelta(o: {
    observation: NativeObservation;
    actionIsPad?: NativeTensor;
    mainX0?: NativeTensor;
    clsNoise?: NativeTensor;
    gradNames?: string[];
    trace?: boolean;
  }): Promise<NativeObjective>;
  trainableParameters(): Promise<Array<{ name: string; shape: number[] }>>;
  parameters(o: { names?: string[] }): Promise<NativeTensorMap>;
  parameterNames(): Promise<string[]>;
  info(): Promise<{ parameters: number; bytes: number; dtype: string; device: string }>;
}

export interface NativeRtcOptions {
  leftover: NativeTensor;
  inferenceDelay: number;
  executionHorizon: number;
  schedule: string;
  maxGuidanceWeight: number;
  stopGradient: boolean;
}

export interface NativeTrainer {
  readonly steps: number;
  readonly parameterCount: number;
  step(o: {
    observation: NativeObservation;
    actions?: NativeTensor;
    actionIsPad?: NativeTensor;
    lr: number;
    objective: 'delta' | 'main';
  }): Promise<{ losses: Record<string, NativeTensor>; gradNorm: number; skipped: boolean; commSeconds: number }>;
  saveState(o: { path: string }): Promise<void>;
  loadState(o: { path: string }): Promise<void>;
}

export interface NativeProcessGroup {
  readonly rank: number;
  readonly worldSize: number;
  readonly backend: string;
  allreduceMean(values: Float64Array): Promise<Float64Array>;
  broadcastModel(model: NativeModel): Promise<void>;
  checkInSync(model: NativeModel): Promise<{ hash: string; inSync: boolean }>;
}

export interface NativeAddon {
  NativeCancel: new () => NativeCancel;
  createTrainer(o: {
    model: NativeModel;
    betas: [number, number];
    eps: number;
    weightDecay: number;
    gradClipNorm: number;
    /** Data-parallel: average gradients over this group's ranks (bucketMb MiB buckets). */
    processGroup?: NativeProcessGroup;
    bucketMb?: number;
  }): Promise<NativeTrainer>;
  distributedInit(o: { rank: number; worldSize: number; masterAddr: string; masterPort: number; timeoutMs: number; device: string }): Promise<NativeProcessGroup>;
  distributedBackends(): string[];
  /**
   * `config` is JSON: {config: config.json keys (lib/config configToJson), resolved: ResolvedDims,
   * tokens: {imageStartTokens, imageEndTokens}}; native/model/config_json.cc parses it once.
   */
  createModel(o: { config: string; seed?: number; dtype?: string; device?: string }): Promise<NativeModel>;
  /** Real-Time Chunking: guided sampling from a filled cache (native/napi/rtc_binding.cc). */
  rtcSample(o: {
    model: NativeModel;
    cache: NativeCache;
    noise?: NativeTensor;
    rtc: NativeRtcOptions;
    trace?: boolean;
    cancel?: NativeCancel;
  }): Promise<{ actions: NativeTensor; trace: NativeTensorMap | null }>;
  rtcPrefixWeights(schedule: string, delay: number, horizon: number, chunk: number): number[];
  rtcGuidanceWeight(t: number, maxGuidanceWeight: number): number;
  NativeTensor: new (...args: never[]) => NativeTensor;
  tensorFromBuffer(data: ArrayBufferView, shape: number[], dtype: string): NativeTensor;
  setNumThreads(n: number): void;
  getNumThreads(): number;
  checkDevice(device: string): string;
  cudaDeviceCount(): number;
  manualSeed(seed: number): void;
  cpuRngState(): NativeTensor;
  buildInfo(): NativeBuildInfo;
  matmulThroughput(m: number, k: number, n: number, dtype: string, seconds: number, device?: string, route?: string): number;
  gemmRoutes(): NativeGemmRoutes;
  setGemmRoute(route: string): void;
  makeAtt2dMasks(pad: NativeTensor, marks: NativeTensor): NativeTensor;
  makeAtt2dMasksWithCls(
    pad: NativeTensor,
    marks: NativeTensor,
    numClsPrefix: number,
    numClsSuffix: number,
    numActionContext: number,
    chunkSize: number,
  ): NativeTensor;
  timeEmbedding(time: NativeTensor, dim: number, minPeriod: number, maxPeriod: number, dtype: string): NativeTensor;
  applyRope(x: NativeTensor, positions: NativeTensor): NativeTensor;
  padVector(x: NativeTensor, newDim: number): NativeTensor;
  resizeWithPad(img: NativeTensor, width: number, height: number, padValue: number): NativeTensor;
  vicregLoss(
    z1: NativeTensor,
    z2: NativeTensor,
    lambda: number,
    mu: number,
    nu: number,
    gamma: number,
    eps: number,
    withGrad: boolean,
  ): NativeVicreg;
  clsSimilarity(current: NativeTensor, previous: NativeTensor): NativeTensor;
  /** Robot data -> model inputs off the JS thread (native/ops/batch_inputs.h). */
  preprocessBatch(o: NativeBatchRequest): Promise<NativeBatchInputs>;
  /** validateOnly: only the values are checked (float frames finite and in [0, 1]). */
  preprocessBatch(o: NativeBatchRequest & { validateOnly: true }): Promise<null>;
  /** Model-space actions (B, C, A) -> per robot C x actionDim, un-normalised (a non-finite value rejects). */
  unnormalizeActions(o: { actions: NativeTensor; actionDim: number; norm?: NativeNormalization }): Promise<Float32Array[]>;
  readSafetensors(file: string): Promise<{ tensors: Record<string, NativeTensor>; metadata: Record<string, string> }>;
  writeSafetensors(file: string, names: string[], tensors: NativeTensor[], metadata: Record<string, string>): Promise<void>;
}

/** The package folder: the nearest parent of this file with our package.json (lib/ or dist/lib/). */
function findPackageRoot(): string {
  let dir = __dirname;
  for (;;) {
    const manifest = path.join(dir, 'package.json');
    if (fs.existsSync(manifest) && (JSON.parse(fs.readFileSync(manifest, 'utf8')) as { name?: string }).name === 'smolvla-node') {
      return dir;
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new SmolVLAError('ERR_SMOLVLA', `smolvla-node: cannot find the package root above ${__dirname}`);
    dir = parent;
  }
}

export const packageRoot = findPackageRoot();

/** The addon loader shared with the install hook (scripts/load-addon.js, plain JS). */
interface AddonLoader {
  loadAddon(root: string): { addon: unknown; binary: { kind: string; file: string; key: string }; torch: { libdir: string; key: string } };
}

function load(): NativeAddon {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const loader = require(path.join(packageRoot, 'scripts', 'load-addon.js')) as AddonLoader;
  // A pthread OpenBLAS keeps its workers spinning for ~2^28 cycles after each GEMM, where they steal
  // the cores from libtorch's own threads in the element-wise work between GEMMs; 2^4 cycles lets
  // them sleep at once. OpenBLAS reads the variable once, while the addon's libraries load, so it is
  // set for the load only and removed again: the user's environment (and child processes) never see
  // it. A value the user set wins.
  const borrowed = process.env.OPENBLAS_THREAD_TIMEOUT === undefined;
  if (borrowed) process.env.OPENBLAS_THREAD_TIMEOUT = '4';
  try {
    // Finds libtorch ($LIBTORCH, Python torch, system), loads it, then the binary built for its
    // version and flavour; otherwise throws one Error (code ERR_SMOLVLA_ADDON) with the source-build command.
    return loader.loadAddon(packageRoot).addon as NativeAddon;
  } finally {
    if (borrowed) delete process.env.OPENBLAS_THREAD_TIMEOUT;
  }
}

export const native: NativeAddon = load();
