/**
 * Loads the native addon (the local build or the prebuild matching the libtorch found, see
 * scripts/load-addon.js) and declares its raw interface. Everything else in lib/ goes through the typed wrappers, never through this file's
 * loose types directly.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

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

export interface NativeBuildInfo {
  torchVersion: string;
  torchSource: string;
  cudaCompiled: boolean;
  mkldnn: boolean;
  parallel: string;
  /** 'avx512' when the vision attention uses the AVX-512 kernels (SMOLVLA_ATTENTION=aten forces 'aten'). */
  attentionKernel: 'avx512' | 'aten';
  /** The libtorch shared library this process actually loaded. */
  torchLibrary?: string;
}

/** Flat model dimensions and switches (native/napi/model_config.cc reads exactly these). */
export interface NativeModelConfig {
  vision: { hidden: number; intermediate: number; layers: number; heads: number; patchSize: number; imageSize: number; layerNormEps: number };
  text: { vocab: number; hidden: number; intermediate: number; heads: number; kvHeads: number; headDim: number; rmsNormEps: number };
  scaleFactor: number;
  numVlmLayers: number;
  numExpertLayers: number;
  selfAttnEveryNLayers: number;
  crossAttention: boolean;
  expertHidden: number;
  expertIntermediate: number;
  chunkSize: number;
  maxStateDim: number;
  maxActionDim: number;
  actionDim: number;
  numSteps: number;
  minPeriod: number;
  maxPeriod: number;
  prefixLength: number;
  addImageSpecialTokens: boolean;
  imageStartTokens: number[];
  imageEndTokens: number[];
  useClsHead: boolean;
  numClsPrefix: number;
  numClsSuffix: number;
  vicregWeight: number;
  vicregLambda: number;
  vicregMu: number;
  vicregNu: number;
  clsNoiseScale: number;
  trainDeltaExpert: boolean;
  trainExpertOnly: boolean;
  freezeVisionEncoder: boolean;
  trainStateProj: boolean;
}

/** The observation the native model consumes: preprocessed tensors (see lib/policy for raw robot data). */
export interface NativeObservation {
  images: NativeTensor[];
  imgMasks: NativeTensor[];
  langTokens: NativeTensor;
  langMasks: NativeTensor;
  state: NativeTensor;
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

export interface NativeModel {
  loadState(path: string): Promise<NativeLoadReport>;
  saveState(path: string, extraNames: string[], extraTensors: NativeTensor[], metadata: Record<string, string>): Promise<void>;
  warmStartDelta(): number;
  to(dtype: string, device: string): Promise<void>;
  prefix(obs: NativeObservation): Promise<NativeCache>;
  sample(
    obs: NativeObservation | null,
    cache: NativeCache | null,
    noise: NativeTensor | null,
    cancel: NativeCancel | null,
  ): Promise<{ actions: NativeTensor; cache: NativeCache | null }>;
  deltaActions(cache: NativeCache, context: NativeTensor | null): Promise<NativeTensor>;
  deltaStep(cache: NativeCache, x: NativeTensor): Promise<NativeTensor>;
  trace(obs: NativeObservation, noise: NativeTensor): Promise<NativeTensorMap>;
  forwardMain(
    obs: NativeObservation,
    actions: NativeTensor,
    isPad: NativeTensor | null,
    noise: NativeTensor | null,
    time: NativeTensor | null,
    gradNames: string[],
  ): Promise<{ losses: NativeTensorMap; grads: NativeTensorMap }>;
  forwardDelta(
    obs: NativeObservation,
    isPad: NativeTensor | null,
    mainX0: NativeTensor | null,
    clsNoise: NativeTensor | null,
    gradNames: string[],
    trace: boolean,
  ): Promise<{ losses: NativeTensorMap; grads: NativeTensorMap; trace: NativeTensorMap }>;
  trainableParameters(): Array<{ name: string; shape: number[] }>;
  parameters(names?: string[]): NativeTensorMap;
  info(): { parameters: number; dtype: string; device: string };
}

export interface NativeTrainer {
  readonly steps: number;
  readonly parameterCount: number;
  step(
    obs: NativeObservation,
    actions: NativeTensor | null,
    isPad: NativeTensor | null,
    lr: number,
    objective: 'delta' | 'main',
  ): Promise<{ losses: Record<string, NativeTensor>; gradNorm: number; skipped: boolean }>;
  saveState(path: string): Promise<void>;
  loadState(path: string): Promise<void>;
}

export interface NativeAddon {
  NativeCancel: new () => NativeCancel;
  createTrainer(model: NativeModel, beta1: number, beta2: number, eps: number, weightDecay: number, gradClipNorm: number): NativeTrainer;
  createModel(config: NativeModelConfig, seed: number, dtype: string, device: string): Promise<NativeModel>;
  NativeTensor: new (...args: never[]) => NativeTensor;
  tensorFromBuffer(data: ArrayBufferView, shape: number[], dtype: string): NativeTensor;
  setNumThreads(n: number): void;
  getNumThreads(): number;
  checkDevice(device: string): string;
  cudaDeviceCount(): number;
  manualSeed(seed: number): void;
  buildInfo(): NativeBuildInfo;
  matmulThroughput(m: number, k: number, n: number, dtype: string, seconds: number, device?: string): number;
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
    if (parent === dir) throw new Error(`smolvla-node: cannot find the package root above ${__dirname}`);
    dir = parent;
  }
}

export const packageRoot = findPackageRoot();

/** The addon loader shared with the install hook (scripts/load-addon.js, plain JS). */
interface AddonLoader {
  loadAddon(root: string): { addon: unknown; binary: { kind: string; file: string; key: string }; torch: { libdir: string; key: string } };
}

function load(): NativeAddon {
  // A pthread OpenBLAS keeps its workers spinning for ~2^28 cycles after each GEMM, where they steal
  // the cores from libtorch's own threads in the element-wise work between GEMMs; 2^4 cycles lets
  // them sleep at once. Read when the library loads, so set before it; a user's value wins.
  process.env.OPENBLAS_THREAD_TIMEOUT ??= '4';
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const loader = require(path.join(packageRoot, 'scripts', 'load-addon.js')) as AddonLoader;
  // Finds libtorch ($LIBTORCH, Python torch, system), loads it, then the binary built for its version
  // and flavour; otherwise throws one Error (code ERR_SMOLVLA_ADDON) with the source-build command.
  return loader.loadAddon(packageRoot).addon as NativeAddon;
}

export const native: NativeAddon = load();
