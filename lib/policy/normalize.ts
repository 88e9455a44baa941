/**
 * Dataset normalisation statistics: read from a checkpoint in either LeRobot layout,
 * applied as LeRobot applies them, and written back so saved checkpoints keep them.
 *
 * Layouts. Older checkpoints keep them in model.safetensors as the Normalize/Unnormalize modules'
 * buffers: `normalize_inputs.buffer_<feature key, '.' -> '_'>.{mean,std,min,max}` for input features,
 * `normalize_targets.buffer_action.*` (training targets) and `unnormalize_outputs.buffer_action.*`
 * (predictions); buffers never filled hold +inf. Newer ones keep them in processor pipelines:
 * `policy_preprocessor.json` names a `normalizer_processor` step whose state file
 * (`policy_preprocessor_step_<i>_normalizer_processor.safetensors`) has keys `<feature key>.<stat>`,
 * and `policy_postprocessor.json` an `unnormalizer_processor` step likewise.
 *
 * Formulas (float32, as LeRobot): MEAN_STD (x - mean) / (std + eps), inverse x * std + mean (no eps);
 * MIN_MAX ((x - min) / (max - min + eps)) * 2 - 1, inverse (x + 1) / 2 * (max - min) + min; eps 1e-8.
 * Batches apply them natively (`nativeStats` -> native/ops/batch_inputs.h), off the JS thread.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { readJsonFile } from '../util/files';
import type { FeatureType, NormalizationMode, SmolVLAConfig } from '../config';
import type { TensorDict } from '../model';
import type { NativeNormalization } from '../native';
import { readSafetensors } from '../safetensors';
import { Tensor } from '../tensor';
import { SmolVLAError } from '../errors';

export interface FeatureStats {
  mean?: Float32Array;
  std?: Float32Array;
  min?: Float32Array;
  max?: Float32Array;
}
/** Statistics by feature key ('observation.state', 'action', camera keys). A dataset's `stats` fits. */
export type StatsMap = Record<string, FeatureStats>;

/** LeRobot keeps one set per role; they normally hold the same dataset numbers. */
export interface PolicyStats {
  /** Input features (state, cameras), normalised before the model. */
  inputs: StatsMap;
  /** Output features as training targets, normalised for the loss. */
  targets: StatsMap;
  /** Output features as predictions, un-normalised after sampling. */
  outputs: StatsMap;
}

export const DEFAULT_EPS = 1e-8;
const STAT_NAMES = ['mean', 'std', 'min', 'max'] as const;
type StatName = (typeof STAT_NAMES)[number];

/** One map for every role (explicit statistics, e.g. a dataset's meta/stats.json). */
export function sharedStats(map: StatsMap): PolicyStats {
  return { inputs: map, targets: map, outputs: map };
}

function isPolicyStats(v: StatsMap | PolicyStats): v is PolicyStats {
  const keys = Object.keys(v);
  return keys.length === 3 && ['inputs', 'targets', 'outputs'].every((k) => keys.includes(k));
}

export function toPolicyStats(v: StatsMap | PolicyStats): PolicyStats {
  return isPolicyStats(v) ? v : sharedStats(v);
}

/** The older layout's buffer name of a feature key. */
export function bufferName(module: 'normalize_inputs' | 'normalize_targets' | 'unnormalize_outputs', key: string): string {
  return `${module}.buffer_${key.split('.').join('_')}`;
}

/** Copies a tensor's values; a buffer LeRobot never filled (+inf) counts as absent. */
function vectorOf(t: Tensor): Float32Array | undefined {
  const values = Float32Array.from(t.toFloat32());
  return values.some((v) => v === Infinity) ? undefined : values;
}

/** The features the policy normalises: state, cameras and the action (SmolVLA uses no others). */
function usedFeatures(config: SmolVLAConfig): Array<{ key: string; type: FeatureType; shape: number[]; output: boolean }> {
  const out: Array<{ key: string; type: FeatureType; shape: number[]; output: boolean }> = [];
  for (const [key, f] of Object.entries(config.inputFeatures)) {
    if (f.type === 'STATE' || f.type === 'VISUAL') out.push({ key, type: f.type, shape: f.shape, output: false });
  }
  for (const [key, f] of Object.entries(config.outputFeatures)) {
    if (f.type === 'ACTION') out.push({ key, type: f.type, shape: f.shape, output: true });
  }
  return out;
}

/** Statistics from model.safetensors' Normalize/Unnormalize buffers (older LeRobot). */
export async function readBufferStats(file: string, config: SmolVLAConfig): Promise<PolicyStats> {
  const stats: PolicyStats = { inputs: {}, targets: {}, outputs: {} };
  if (!fs.existsSync(file)) return stats;
  const { tensors } = await readSafetensors(file);
  const roles: Array<[keyof PolicyStats, 'normalize_inputs' | 'normalize_targets' | 'unnormalize_outputs', boolean]> = [
    ['inputs', 'normalize_inputs', false],
    ['targets', 'normalize_targets', true],
    ['outputs', 'unnormalize_outputs', true],
  ];
  for (const { key, output } of usedFeatures(config)) {
    for (const [role, module, forOutputs] of roles) {
      if (forOutputs !== output) continue;
      const entry: FeatureStats = {};
      for (const stat of STAT_NAMES) {
        const t = tensors.get(`${bufferName(module, key)}.${stat}`);
        const v = t ? vectorOf(t) : undefined;
        if (v) entry[stat] = v;
      }
      if (Object.keys(entry).length > 0) stats[role][key] = entry;
    }
  }
  for (const t of tensors.values()) t.dispose();
  return stats;
}

interface ProcessorStats {
  stats: StatsMap;
  eps: number;
  file: string;
}

/** The normaliser step of a processor pipeline file (`policy_preprocessor.json` / `policy_postprocessor.json`). */
async function readProcessorStep(dir: string, pipeline: string, registryName: string): Promise<ProcessorStats | null> {
  const jsonFile = path.join(dir, `${pipeline}.json`);
  let stateFile: string | undefined;
  let eps = DEFAULT_EPS;
  if (fs.existsSync(jsonFile)) {
    const json = (await readJsonFile(jsonFile)) as { steps?: unknown };
    if (!Array.isArray(json.steps)) throw new SmolVLAError('ERR_SMOLVLA_CONFIG', `${jsonFile}: expected a 'steps' list (a LeRobot processor pipeline)`);
    const step = (json.steps as Array<Record<string, unknown>>).find((s) => s.registry_name === registryName);
    if (!step) return null;
    if (typeof step.state_file === 'string') stateFile = path.join(dir, step.state_file);
    const cfg = step.config as { eps?: unknown } | undefined;
    if (cfg && typeof cfg.eps === 'number') eps = cfg.eps;
  } else {
    // A pipeline whose JSON was lost: its state file still has LeRobot's fixed name pattern.
    const name = fs.readdirSync(dir).find((f) => f.startsWith(`${pipeline}_step_`) && f.endsWith(`_${registryName}.safetensors`));
    if (name) stateFile = path.join(dir, name);
  }
  if (!stateFile) return null;
  if (!fs.existsSync(stateFile)) throw new SmolVLAError('ERR_SMOLVLA_CONFIG', `${jsonFile}: its ${registryName} state file ${stateFile} does not exist`);
  const { tensors } = await readSafetensors(stateFile);
  const stats: StatsMap = {};
  for (const [name, t] of tensors) {
    const dot = name.lastIndexOf('.');
    const stat = name.slice(dot + 1);
    if (dot > 0 && (STAT_NAMES as readonly string[]).includes(stat)) {
      const v = vectorOf(t);
      if (v) (stats[name.slice(0, dot)] ??= {})[stat as StatName] = v;
    }
    t.dispose();
  }
  return { stats, eps, file: stateFile };
}

export interface CheckpointStats {
  stats: PolicyStats;
  /** eps of the newer layout's normaliser step (1e-8 otherwise). */
  eps: number;
  /** Files the statistics came from. */
  sources: string[];
}

/**
 * Statistics of a checkpoint folder: processor files where present (newer LeRobot), else
 * model.safetensors' buffers. Features found in neither are simply absent (the Normalizer decides).
 */
export async function readCheckpointStats(dir: string, config: SmolVLAConfig): Promise<CheckpointStats> {
  const weights = path.join(dir, 'model.safetensors');
  const stats = await readBufferStats(weights, config);
  const sources: string[] = [];
  const found = (map: StatsMap) => Object.keys(map).length > 0;
  if (found(stats.inputs) || found(stats.targets) || found(stats.outputs)) sources.push(weights);
  let eps = DEFAULT_EPS;
  const pre = await readProcessorStep(dir, 'policy_preprocessor', 'normalizer_processor');
  if (pre) {
    // The preprocessor's normaliser covers input and output features (the latter as training targets).
    for (const [key, entry] of Object.entries(pre.stats)) {
      (key in config.outputFeatures ? stats.targets : stats.inputs)[key] = entry;
    }
    eps = pre.eps;
    sources.push(pre.file);
  }
  const post = await readProcessorStep(dir, 'policy_postprocessor', 'unnormalizer_processor');
  if (post) {
    Object.assign(stats.outputs, post.stats);
    sources.push(post.file);
  }
  return { stats, eps, sources };
}

/** What a mode needs. */
function requiredStats(mode: NormalizationMode): StatName[] {
  if (mode === 'MEAN_STD') return ['mean', 'std'];
  if (mode === 'MIN_MAX') return ['min', 'max'];
  return [];
}

/** Per-feature affine map in float32: forward y = (x - shift) / scale; inverse x = y * scale + shift. */
interface Transform {
  mode: 'MEAN_STD' | 'MIN_MAX';
  /** Values per sample (channels for a camera). */
  dim: number;
  a: Float32Array;
  b: Float32Array;
}

export interface NormalizerOptions {
  eps?: number;
  /** Use identity for features whose statistics are missing (and list them in `missing`) instead of throwing. */
  allowMissing?: boolean;
}

const f32 = Math.fround;

export class Normalizer {
  readonly config: SmolVLAConfig;
  readonly stats: PolicyStats;
  readonly eps: number;
  /** Features normalised as identity because their statistics are missing (allowMissing only). */
  readonly missing: string[];
  private readonly inputs = new Map<string, Transform>();
  private readonly targets = new Map<string, Transform>();
  private readonly outputs = new Map<string, Transform>();

  constructor(config: SmolVLAConfig, stats: PolicyStats, options: NormalizerOptions = {}) {
    this.config = config;
    this.stats = stats;
    this.eps = options.eps ?? DEFAULT_EPS;
    const problems = new Set<string>();
    const missing = new Set<string>();
    for (const { key, type, shape, output } of usedFeatures(config)) {
      const mode = config.normalizationMapping[type] ?? 'IDENTITY';
      if (mode === 'IDENTITY') continue;
      if (mode !== 'MEAN_STD' && mode !== 'MIN_MAX') {
        throw new SmolVLAError('ERR_SMOLVLA_CONFIG', `normalization_mapping: ${type} uses ${mode}, which this package does not support (MEAN_STD, MIN_MAX, IDENTITY)`);
      }
      // A camera's statistics are per channel ((C, 1, 1) in LeRobot); others cover the whole shape.
      const dim = type === 'VISUAL' ? (shape[0] ?? 3) : shape.reduce((p, s) => p * s, 1);
      // Targets and outputs are the same dataset numbers; either stands in for the other.
      const roles: Array<[Map<string, Transform>, FeatureStats | undefined]> = output
        ? [
            [this.targets, stats.targets[key] ?? stats.outputs[key]],
            [this.outputs, stats.outputs[key] ?? stats.targets[key]],
          ]
        : [[this.inputs, stats.inputs[key]]];
      for (const [map, entry] of roles) {
        const need = requiredStats(mode);
        const absent = need.filter((n) => !entry?.[n]);
        if (absent.length > 0) {
          if (options.allowMissing) missing.add(key);
          else problems.add(`${key} (${mode} needs ${need.join(' and ')})`);
          continue;
        }
        map.set(key, this.transform(key, mode, dim, entry!));
      }
    }
    this.missing = [...missing];
    if (problems.size > 0) {
      throw new SmolVLAError('ERR_SMOLVLA_CONFIG',
        `normalisation statistics missing for ${[...problems].join(', ')}. A LeRobot checkpoint keeps them as ` +
          `normalize_inputs/unnormalize_outputs buffers in model.safetensors or in policy_preprocessor/policy_postprocessor ` +
          `files; pass them explicitly otherwise (the stats option, e.g. the dataset's meta/stats.json).`,
      );
    }
  }

  private transform(key: string, mode: 'MEAN_STD' | 'MIN_MAX', dim: number, entry: FeatureStats): Transform {
    const get = (n: StatName): Float32Array => {
      const v = entry[n]!;
      if (v.length !== dim) throw new SmolVLAError('ERR_SMOLVLA_CONFIG', `statistics of ${key}: ${n} has ${v.length} values, the feature has ${dim}`);
      const bad = v.findIndex((x) => !Number.isFinite(x));
      if (bad >= 0) throw new SmolVLAError('ERR_SMOLVLA_CONFIG', `statistics of ${key}: ${n}[${bad}] is ${v[bad]}`);
      return v;
    };
    if (mode === 'MEAN_STD') return { mode, dim, a: get('mean'), b: get('std') };
    return { mode, dim, a: get('min'), b: get('max') };
  }

  /** The normalisation mode of a feature key (IDENTITY for unknown keys and missing statistics). */
  modeOf(key: string): NormalizationMode {
    const t = this.inputs.get(key) ?? this.outputs.get(key) ?? this.targets.get(key);
    return t ? t.mode : 'IDENTITY';
  }

  /**
   * A feature's statistics as the native batch preprocessing applies them (undefined: identity).
   * `inputs` are the state and cameras, `targets` the training actions, `outputs` the predictions.
   */
  nativeStats(role: keyof PolicyStats, key: string): NativeNormalization | undefined {
    const t = this[role].get(key);
    return t && { mode: t.mode, a: t.a, b: t.b, eps: this.eps };
  }

  /**
   * Normalises robot-space action rows as training targets are (the element-wise formula the native
   * preprocessing applies to batches). Kept in JS for the serving adapter's few rows per request
   * (an RTC leftover, a refine context: lib/serving/localPolicy.ts), which become one small tensor.
   */
  normalizeTarget(key: string, values: Float32Array): Float32Array {
    const t = this.targets.get(key);
    if (!t) return Float32Array.from(values);
    const out = new Float32Array(values.length);
    const { a, b, dim, mode } = t;
    const eps = this.eps;
    // Per-statistic constants rounded to float32 once, as the native path does.
    const scale = Float32Array.from({ length: dim }, (_, j) => (mode === 'MEAN_STD' ? f32(b[j]! + eps) : f32(f32(b[j]! - a[j]!) + eps)));
    for (let i = 0; i < values.length; i++) {
      const j = i % dim;
      const y = f32(f32(values[i]! - a[j]!) / scale[j]!);
      out[i] = mode === 'MEAN_STD' ? y : f32(f32(y * 2) - 1);
    }
    return out;
  }

  /**
   * The statistics as the older layout's buffers (`normalize_inputs.buffer_observation_state.mean`, ...),
   * to pass as `extra` to SmolVLAModel.save so the checkpoint keeps them.
   */
  toTensors(): TensorDict {
    const out: TensorDict = {};
    const add = (module: 'normalize_inputs' | 'normalize_targets' | 'unnormalize_outputs', key: string, t: Transform | undefined, shape: number[]) => {
      if (!t) return;
      const [na, nb] = t.mode === 'MEAN_STD' ? ['mean', 'std'] : ['min', 'max'];
      out[`${bufferName(module, key)}.${na}`] = Tensor.from(Float32Array.from(t.a), shape);
      out[`${bufferName(module, key)}.${nb}`] = Tensor.from(Float32Array.from(t.b), shape);
    };
    for (const { key, type, shape, output } of usedFeatures(this.config)) {
      const bufShape = type === 'VISUAL' ? [shape[0] ?? 3, 1, 1] : shape;
      if (output) {
        add('normalize_targets', key, this.targets.get(key), bufShape);
        add('unnormalize_outputs', key, this.outputs.get(key), bufShape);
      } else {
        add('normalize_inputs', key, this.inputs.get(key), bufShape);
      }
    }
    return out;
  }
}
