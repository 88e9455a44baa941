/**
 * Loads the native addon (prebuild for this platform first, then the local build) and declares its
 * raw interface. Everything else in lib/ goes through the typed wrappers, never through this file's
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
  parameterNames(): string[];
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
  cpuRngState(): NativeTensor;
  buildInfo(): NativeBuildInfo;
  matmulThroughput(m: number, k: number, n: number, dtype: string, seconds: number): number;
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

function explainLoadFailure(cause: unknown): Error {
  const infoFile = path.join(packageRoot, 'build', 'torch-info.json');
  let builtWith = 'no local build found (build/torch-info.json is missing)';
  if (fs.existsSync(infoFile)) {
    const info = JSON.parse(fs.readFileSync(infoFile, 'utf8')) as { version: string; source: string; libdir: string };
    builtWith = `built against libtorch ${info.version} from ${info.source} (${info.libdir})`;
  }
  const message =
    `smolvla-node: the native addon could not be loaded: ${(cause as Error).message}\n` +
    `  The addon is ${builtWith}. A binary only loads against the libtorch it was built with.\n` +
    `  Rebuild it for the libtorch you have: (cd ${packageRoot} && npm run build:native)\n` +
    `  (set LIBTORCH=/path/to/libtorch to choose one; see README "Building from source").`;
  return new Error(message, { cause });
}

/**
 * A binary only works with the libtorch it was built against (SPEC §10): when the library loaded
 * at run time lives elsewhere than the one recorded at build time, say so with the rebuild command.
 */
function checkTorchLocation(addon: NativeAddon): void {
  const infoFile = path.join(packageRoot, 'build', 'torch-info.json');
  const loaded = addon.buildInfo().torchLibrary;
  if (!loaded || !fs.existsSync(infoFile)) return;
  const info = JSON.parse(fs.readFileSync(infoFile, 'utf8')) as { libdir: string; version: string };
  const real = (p: string) => (fs.existsSync(p) ? fs.realpathSync(p) : p);
  if (info.libdir && path.dirname(real(loaded)) !== real(info.libdir) && process.env.SMOLVLA_ALLOW_TORCH_MISMATCH !== '1') {
    throw new Error(
      `smolvla-node: the addon was built against libtorch ${info.version} in ${info.libdir} but loaded ${loaded}.\n` +
        `  Rebuild it for the libtorch you use: (cd ${packageRoot} && npm run build:native)\n` +
        '  (or set SMOLVLA_ALLOW_TORCH_MISMATCH=1 if both are the same build).',
    );
  }
}

function load(): NativeAddon {
  // A pthread OpenBLAS keeps its workers spinning for ~2^28 cycles after each GEMM, where they steal
  // the cores from libtorch's own threads in the element-wise work between GEMMs; 2^4 cycles lets
  // them sleep at once. Read when the library loads, so set before it; a user's value wins.
  process.env.OPENBLAS_THREAD_TIMEOUT ??= '4';
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const nodeGypBuild = require('node-gyp-build') as (dir: string) => unknown;
  let addon: NativeAddon;
  try {
    addon = nodeGypBuild(packageRoot) as NativeAddon;
  } catch (err) {
    throw explainLoadFailure(err);
  }
  checkTorchLocation(addon);
  return addon;
}

export const native: NativeAddon = load();
