/**
 * `smolvla-node train`: LeRobot's `lerobot-train` for the delta expert, with its flag names, e.g.
 *
 *   smolvla-node train --policy.type=smolvla --policy.train_delta_expert=True --policy.use_cls_head=True \
 *     --policy.num_cls_prefix=2 --policy.num_cls_suffix=2 --policy.vicreg_weight=0.01 \
 *     --dataset.repo_id=your_dataset --batch_size=64 --steps=200000
 *
 * --policy.type=smolvla is SmolVLA's shape (SmolVLM2-500M); --policy.path fine-tunes a local
 * checkpoint. The toy model (--policy.preset=tiny) and the demo's model (--policy.preset=demo) are
 * only for the built-in data (no --dataset.repo_id, nothing is downloaded; --dataset.built_in=scenes
 * is the demo simulator's). SIGINT (Ctrl-C) and SIGTERM finish the current step, save a
 * checkpoint and the report and exit with 130 / 143; resume with
 * --resume=true --config_path=<output_dir>/checkpoints/last/pretrained_model/train_config.json.
 */
import { promises as fsp, realpathSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { CONFIG_DEFAULTS, CONFIG_FIELD_NAMES, camelToSnake, configToJson, defaultConfig, readConfig, type SmolVLAConfig } from '../config';
import type { Dataset } from '../data';
import { checkpointFolder, SmolVLAModel } from '../model';
import { setNumThreads } from '../runtime';
import { DEFAULT_BUCKET_MB, DEFAULT_TIMEOUT_S, ProcessGroup, distributedEnvFrom, type DistributedEnv } from '../train/distributed';
import { locateCheckpoint, readTrainConfig, uncheckpointedRunFiles, type CheckpointPaths } from '../train/checkpoint';
import { datasetBatcher } from '../train/batcher';
import { train, METRICS_FILE, REPORT_FILE, type TrainResult } from '../train/loop';
import { demoConfig, tinyConfig } from '../train/presets';
import {
  applyConfigOverrides,
  BUILT_IN_DATASETS,
  checkDatasetFits,
  fitConfigToDataset,
  loadPolicy,
  openTrainingDataset,
  tokenizerFor,
  type BuiltInDataset,
} from '../train/setup';
import { splitEpisodes } from '../train/split';
import { flagValue, formatFlagHelp, parseFlags, type FlagSpec, type FlagValue } from './flags';
import { launchWorkers } from './launch';
import { IGNORED_LEROBOT_FLAGS, takeIgnoredFlags } from './lerobotFlags';
import { Progress, type CliIO } from './progress';

export type { CliIO } from './progress';

/** A problem with the command line itself (exit code 2). */
class UsageError extends Error {}

const PRESETS = ['tiny', 'demo', 'smolvla'] as const;
/** Presets of small models for the built-in datasets only. */
const BUILT_IN_PRESETS: ReadonlySet<string> = new Set(['tiny', 'demo']);

/** Flags of the run (LeRobot's TrainPipelineConfig names where it has them). */
export const RUN_FLAGS: readonly FlagSpec[] = [
  { name: 'dataset.repo_id', type: 'string', help: 'LeRobot dataset id, read from a local folder (none: the built-in synthetic dataset)' },
  { name: 'dataset.root', type: 'string', help: 'dataset folder; unset: $HF_LEROBOT_HOME/<repo_id>, then ~/.cache/huggingface/lerobot/<repo_id>' },
  { name: 'dataset.built_in', type: 'string', help: `without --dataset.repo_id: ${BUILT_IN_DATASETS.join(' or ')} (moving blocks, the default; or the demo simulator's scenes with scene changes and a moving target)` },
  { name: 'dataset.eval_split', type: 'number', default: 0.1, help: 'fraction of episodes held out for evaluation, spread over tasks (0: none)' },
  { name: 'policy.type', type: 'string', default: 'smolvla', help: 'policy type (only smolvla)' },
  { name: 'policy.path', type: 'string', help: 'checkpoint folder (config.json + model.safetensors) to start from' },
  { name: 'policy.preset', type: 'string', help: `fresh model without --policy.path: smolvla (the default with a dataset: SmolVLM2-500M shapes, published init), tiny (the toy model) or demo (the demo's built-in model), the last two only for the built-in data` },
  { name: 'policy.device', type: 'string', default: 'cpu', help: "libtorch device ('cpu', 'cuda', 'cuda:N')" },
  { name: 'policy.warm_start_delta', type: 'bool', default: false, help: "initialise a checkpoint's missing delta expert from its main expert" },
  { name: 'policy.tokenizer_path', type: 'string', help: "the VLM's tokenizer.json (or its folder); the tiny preset needs none (byte tokens)" },
  { name: 'batch_size', type: 'int', default: 8, help: 'samples per update' },
  { name: 'steps', type: 'int', default: 100000, help: 'optimizer updates in the whole run' },
  { name: 'output_dir', type: 'string', help: 'run folder, new or empty unless resuming; unset: outputs/train/<date>/<time>_smolvla' },
  { name: 'log_freq', type: 'int', default: 200, help: 'write metrics every N updates' },
  { name: 'save_freq', type: 'int', default: 20000, help: 'save a checkpoint every N updates (and after the last)' },
  { name: 'save_checkpoint', type: 'bool', default: true, help: 'write checkpoints at all' },
  { name: 'eval_steps', type: 'int', default: 0, help: 'evaluate on the held-out episodes every N updates (0: only at the end)' },
  { name: 'max_eval_samples', type: 'int', default: 0, help: 'held-out samples per evaluation at most (0: all)' },
  { name: 'seed', type: 'int', default: 1000, help: 'seed of the initialisation, the batch order and the per-step noise' },
  { name: 'resume', type: 'bool', default: false, help: 'continue the run of --config_path (or of --output_dir)' },
  { name: 'config_path', type: 'string', help: "the run's <output_dir>/checkpoints/<step|last>/pretrained_model/train_config.json" },
  { name: 'num_processes', type: 'int', default: 1, help: 'data-parallel worker processes on this machine (batch_size is per process); under torchrun-style RANK/WORLD_SIZE variables the command is one worker' },
  { name: 'num_threads', type: 'int', default: 0, help: 'libtorch threads per process (0: libtorch default; several workers: cores / workers)' },
  { name: 'dist.timeout_s', type: 'number', default: DEFAULT_TIMEOUT_S, help: 'bound on the rendezvous and on every collective: a dead or stuck worker stops the others after it' },
  { name: 'dist.bucket_mb', type: 'number', default: DEFAULT_BUCKET_MB, help: 'gradient all-reduce bucket size in MiB' },
  { name: 'dist.check_sync', type: 'bool', default: false, help: "compare a hash of every worker's parameters after each update (stops on a difference)" },
];

/** --policy.<config.json key> for every SmolVLAConfig field, plus vlm_backbone. */
function policyFieldFlags(): FlagSpec[] {
  const defaults = configToJson(defaultConfig());
  const specs: FlagSpec[] = CONFIG_FIELD_NAMES.map((field) => {
    const key = camelToSnake(field);
    const d = CONFIG_DEFAULTS[field];
    const type = typeof d === 'boolean' ? 'bool' : typeof d === 'number' ? 'number' : typeof d === 'string' ? 'string' : 'json';
    const fromData = key === 'input_features' || key === 'output_features';
    return { name: `policy.${key}`, type, default: defaults[key], help: `SmolVLAConfig ${key}${fromData ? '; a fresh model takes the dataset\'s unless set' : ''}` };
  });
  specs.push({ name: 'policy.vlm_backbone', type: 'json', default: defaults.vlm_backbone, help: 'backbone dimensions (text_config, vision_config, scale_factor)' });
  return specs;
}

const POLICY_FIELD_FLAGS = policyFieldFlags();
const ALL_FLAGS = [...RUN_FLAGS, ...POLICY_FIELD_FLAGS, ...IGNORED_LEROBOT_FLAGS];

/** Fixed flags holding paths: compared as absolute paths when resuming. */
const PATH_FLAGS = new Set(['dataset.root', 'policy.path']);

/** Flags a resumed run may change; any other flag must repeat the saved value. */
const RESUME_MUTABLE = new Set([
  'resume', 'config_path', 'output_dir', 'steps', 'log_freq', 'save_freq', 'save_checkpoint', 'eval_steps', 'max_eval_samples', 'policy.device', 'policy.tokenizer_path',
  // Another number of processes may resume a run while batch_size × processes stays the same (the loop checks).
  'batch_size', 'num_processes', 'num_threads', 'dist.timeout_s', 'dist.bucket_mb', 'dist.check_sync',
]);

export function trainHelp(): string {
  return [
    'usage: smolvla-node train [--flag=value | --flag value] ...',
    '',
    "Trains SmolVLA (its delta expert and CLS head, or the action expert) as LeRobot's lerobot-train does.",
    '--policy.type=smolvla: SmolVLA shapes; --policy.path=DIR: fine-tune a local checkpoint folder.',
    'The built-in demo data (no --dataset.repo_id) needs --policy.preset=tiny (the toy model) or demo (the demo\'s model). Booleans: True/False/true/false.',
    'Ctrl-C or SIGTERM finishes the current step and saves a checkpoint; a second signal quits at once.',
    formatFlagHelp([
      { title: 'Run and dataset', specs: RUN_FLAGS },
      {
        title: "Policy config (config.json keys; SmolVLA's defaults, with --policy.preset=tiny/demo that model's, with --policy.path the checkpoint's)",
        specs: POLICY_FIELD_FLAGS,
      },
      { title: "LeRobot flags accepted and ignored (one warning each)", specs: IGNORED_LEROBOT_FLAGS },
    ]),
    '',
  ].join('\n');
}

interface Settings {
  datasetRepoId?: string;
  datasetRoot?: string;
  datasetBuiltIn?: BuiltInDataset;
  evalSplit: number;
  policyPath?: string;
  /** Unset: SmolVLA's shape with a dataset; the demo data needs an explicit preset. */
  preset?: (typeof PRESETS)[number];
  device: string;
  warmStartDelta: boolean;
  tokenizerPath?: string;
  /** config.json keys set by --policy.<key>. */
  overrides: Record<string, unknown>;
  batchSize: number;
  steps: number;
  outputDir?: string;
  logFreq: number;
  saveFreq: number;
  saveCheckpoint: boolean;
  evalSteps: number;
  maxEvalSamples: number;
  seed: number;
  resume: boolean;
  configPath?: string;
  numProcesses: number;
  numThreads: number;
  distTimeoutS: number;
  distBucketMb: number;
  distCheckSync: boolean;
}

function settingsFrom(values: Map<string, FlagValue>): Settings {
  const get = <T>(name: string): T => flagValue<T>(values, ALL_FLAGS, name);
  const opt = (name: string): string | undefined => values.get(name) as string | undefined;
  const type = get<string>('policy.type');
  if (type !== 'smolvla') throw new UsageError(`--policy.type: only "smolvla" is supported, got ${JSON.stringify(type)}`);
  const preset = opt('policy.preset');
  if (preset !== undefined && !(PRESETS as readonly string[]).includes(preset)) throw new UsageError(`--policy.preset: expected ${PRESETS.join(' or ')}, got ${JSON.stringify(preset)}`);
  const overrides: Record<string, unknown> = {};
  for (const spec of POLICY_FIELD_FLAGS) if (values.has(spec.name)) overrides[spec.name.slice('policy.'.length)] = values.get(spec.name);
  const s: Settings = {
    evalSplit: get('dataset.eval_split'),
    device: get('policy.device'),
    warmStartDelta: get('policy.warm_start_delta'),
    overrides,
    batchSize: get('batch_size'),
    steps: get('steps'),
    logFreq: get('log_freq'),
    saveFreq: get('save_freq'),
    saveCheckpoint: get('save_checkpoint'),
    evalSteps: get('eval_steps'),
    maxEvalSamples: get('max_eval_samples'),
    seed: get('seed'),
    resume: get('resume'),
    numProcesses: get('num_processes'),
    numThreads: get('num_threads'),
    distTimeoutS: get('dist.timeout_s'),
    distBucketMb: get('dist.bucket_mb'),
    distCheckSync: get('dist.check_sync'),
  };
  // Paths are kept absolute: train_config.json must still point at them from another working folder.
  const abs = (flag: string): string | undefined => {
    const v = opt(flag);
    return v === undefined ? undefined : path.resolve(v);
  };
  const optional = {
    datasetRepoId: opt('dataset.repo_id'),
    datasetRoot: abs('dataset.root'),
    policyPath: abs('policy.path'),
    tokenizerPath: abs('policy.tokenizer_path'),
    outputDir: abs('output_dir'),
    configPath: abs('config_path'),
  };
  for (const [key, v] of Object.entries(optional) as Array<[keyof typeof optional, string | undefined]>) if (v !== undefined) s[key] = v;
  if (preset !== undefined) s.preset = preset as (typeof PRESETS)[number];
  const builtIn = opt('dataset.built_in');
  if (builtIn !== undefined) {
    if (!(BUILT_IN_DATASETS as readonly string[]).includes(builtIn)) throw new UsageError(`--dataset.built_in: expected ${BUILT_IN_DATASETS.join(' or ')}, got ${JSON.stringify(builtIn)}`);
    if (s.datasetRepoId !== undefined) throw new UsageError('--dataset.built_in names a built-in dataset: give it or --dataset.repo_id, not both');
    s.datasetBuiltIn = builtIn as BuiltInDataset;
  }
  for (const [name, v] of [['batch_size', s.batchSize], ['steps', s.steps], ['log_freq', s.logFreq], ['save_freq', s.saveFreq]] as const) {
    if (v < 1) throw new UsageError(`--${name}: expected a positive integer, got ${v}`);
  }
  for (const [name, v] of [['num_processes', s.numProcesses], ['dist.timeout_s', s.distTimeoutS], ['dist.bucket_mb', s.distBucketMb]] as const) {
    if (!(v > 0)) throw new UsageError(`--${name}: expected a positive number, got ${v}`);
  }
  for (const [name, v] of [['eval_steps', s.evalSteps], ['max_eval_samples', s.maxEvalSamples], ['num_threads', s.numThreads]] as const) {
    if (v < 0) throw new UsageError(`--${name}: expected 0 or a positive integer, got ${v}`);
  }
  if (!(s.evalSplit >= 0 && s.evalSplit < 1)) throw new UsageError(`--dataset.eval_split: expected a fraction in [0, 1), got ${s.evalSplit}`);
  if (!s.resume && s.configPath !== undefined) throw new UsageError('--config_path is read only with --resume=true (LeRobot resumes from a checkpoint\'s train_config.json)');
  return s;
}

/** train_config.json: the run's settings in LeRobot's TrainPipelineConfig shape (flag names nest by their dots). */
function trainConfigJson(s: Settings, config: SmolVLAConfig, outputDir: string): Record<string, unknown> {
  const schedule = { type: 'cosine_decay_with_warmup', num_warmup_steps: config.schedulerWarmupSteps, num_decay_steps: config.schedulerDecaySteps, peak_lr: config.optimizerLr, decay_lr: config.schedulerDecayLr };
  return {
    dataset: { repo_id: s.datasetRepoId ?? null, root: s.datasetRoot ?? null, ...(s.datasetBuiltIn !== undefined ? { built_in: s.datasetBuiltIn } : {}), eval_split: s.evalSplit },
    policy: {
      ...configToJson(config),
      path: s.policyPath ?? null,
      preset: s.preset ?? null,
      device: s.device,
      warm_start_delta: s.warmStartDelta,
      tokenizer_path: s.tokenizerPath ?? null,
    },
    output_dir: outputDir,
    resume: s.resume,
    seed: s.seed,
    batch_size: s.batchSize,
    num_processes: s.numProcesses,
    steps: s.steps,
    log_freq: s.logFreq,
    save_freq: s.saveFreq,
    save_checkpoint: s.saveCheckpoint,
    eval_steps: s.evalSteps,
    max_eval_samples: s.maxEvalSamples,
    use_policy_training_preset: true,
    optimizer: {
      type: 'adamw',
      lr: config.optimizerLr,
      betas: config.optimizerBetas,
      eps: config.optimizerEps,
      weight_decay: config.optimizerWeightDecay,
      grad_clip_norm: config.optimizerGradClipNorm,
    },
    scheduler: schedule,
  };
}

/** The saved value a flag stands for in train_config.json (`dataset.repo_id` -> json.dataset.repo_id). */
function savedValue(json: Record<string, unknown>, flag: string): unknown {
  let v: unknown = json;
  for (const part of flag.split('.')) v = typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[part] : undefined;
  return v ?? undefined;
}

function realpathOr(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}

/** Settings of the run being resumed, with the flags a resumed run may change applied. */
function resumedSettings(saved: Record<string, unknown>, given: Map<string, FlagValue>, paths: CheckpointPaths): Settings {
  const values = new Map<string, FlagValue>();
  for (const spec of RUN_FLAGS) {
    const v = savedValue(saved, spec.name);
    if (v !== undefined && v !== null) values.set(spec.name, v as FlagValue);
  }
  for (const [flag, v] of given) {
    if (RESUME_MUTABLE.has(flag)) {
      values.set(flag, v);
      continue;
    }
    const before = savedValue(saved, flag);
    const wanted = PATH_FLAGS.has(flag) && typeof v === 'string' ? path.resolve(v) : v;
    if (JSON.stringify(before) !== JSON.stringify(wanted)) {
      throw new UsageError(
        `--${flag}=${JSON.stringify(v)} differs from the resumed run's ${JSON.stringify(before ?? null)} ` +
          `(${paths.trainConfigFile}); a resumed run keeps its configuration: start a new run to change it`,
      );
    }
  }
  values.set('resume', true);
  const s = settingsFrom(values);
  if (given.has('output_dir') && s.outputDir !== undefined && realpathOr(s.outputDir) !== paths.outputDir) {
    throw new UsageError(`--output_dir ${s.outputDir} is not the folder of the resumed checkpoint (${paths.outputDir})`);
  }
  s.outputDir = paths.outputDir;
  return s;
}

function datasetSettings(s: Settings): { repoId?: string; root?: string; builtIn?: BuiltInDataset } {
  return {
    ...(s.datasetRepoId !== undefined ? { repoId: s.datasetRepoId } : {}),
    ...(s.datasetRoot !== undefined ? { root: s.datasetRoot } : {}),
    ...(s.datasetBuiltIn !== undefined ? { builtIn: s.datasetBuiltIn } : {}),
  };
}

/**
 * The configuration of a fresh model: SmolVLA's (SmolVLM2-500M shapes) unless a small preset is asked
 * for (the toy model or the demo's), which only fits the built-in data.
 */
function freshBase(settings: Settings): SmolVLAConfig {
  if (settings.preset !== undefined && BUILT_IN_PRESETS.has(settings.preset)) {
    if (settings.datasetRepoId !== undefined) {
      const what = settings.preset === 'tiny' ? 'the toy model' : "the demo's built-in model";
      throw new UsageError(`--policy.preset=${settings.preset} is ${what} for the built-in demo data; for a dataset use --policy.type=smolvla (SmolVLA's shape) or fine-tune a local checkpoint with --policy.path=DIR`);
    }
    return settings.preset === 'tiny' ? tinyConfig() : demoConfig();
  }
  if (settings.preset === undefined && settings.datasetRepoId === undefined) {
    throw new UsageError('without --dataset.repo_id the built-in demo data is used: pass --policy.preset=tiny for its toy model, demo for the demo\'s model (or --policy.preset=smolvla for the full SmolVLA shape)');
  }
  return defaultConfig();
}

/** --policy.path checked first: a Hub id gets a message on how to download it. */
async function policyFolder(dir: string): Promise<string> {
  try {
    return await checkpointFolder(dir, '--policy.path');
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

function defaultOutputDir(): string {
  const now = new Date();
  const p = (n: number) => String(n).padStart(2, '0');
  return path.join('outputs', 'train', `${now.getFullYear()}-${p(now.getMonth() + 1)}-${p(now.getDate())}`, `${p(now.getHours())}-${p(now.getMinutes())}-${p(now.getSeconds())}_smolvla`);
}

/** What a run writes to --output_dir besides its checkpoints. */
const RUN_FILES = [METRICS_FILE, REPORT_FILE];

interface Prepared {
  settings: Settings;
  model: SmolVLAModel;
  dataset: Dataset;
  resume?: CheckpointPaths;
  outputDir: string;
}

async function prepare(given: Map<string, FlagValue>, say: (line: string) => void): Promise<Prepared> {
  let settings = settingsFrom(given);
  if (settings.resume) {
    const where = settings.configPath ?? settings.outputDir;
    if (where === undefined) {
      throw new UsageError('--resume=true needs --config_path=<output_dir>/checkpoints/last/pretrained_model/train_config.json (or --output_dir of the run)');
    }
    const leftovers = settings.configPath === undefined ? await uncheckpointedRunFiles(path.resolve(where), RUN_FILES) : null;
    if (leftovers !== null && leftovers.length > 0) {
      throw new UsageError(
        `--resume=true: ${path.resolve(where)} has no checkpoint (its run stopped before the first one; it holds only ${leftovers.join(', ')}); ` +
          'run the same command without --resume=true to start it over',
      );
    }
    const paths = await locateCheckpoint(where);
    settings = resumedSettings(await readTrainConfig(paths), given, paths);
    const { model } = await SmolVLAModel.fromPretrained(paths.pretrainedDir, { seed: settings.seed, device: settings.device });
    const dataset = await openTrainingDataset(datasetSettings(settings), model.config);
    try {
      checkDatasetFits(model.config, dataset);
    } catch (e) {
      await dataset.close();
      throw e;
    }
    return { settings, model, dataset, resume: paths, outputDir: paths.outputDir };
  }

  const outputDir = path.resolve(settings.outputDir ?? defaultOutputDir());
  const existing = await fsp.readdir(outputDir).catch(() => null);
  // A run killed before its first checkpoint leaves only its metrics and a partial step folder:
  // nothing to resume, so a fresh start clears them instead of refusing the folder.
  const leftovers = existing && existing.length > 0 ? await uncheckpointedRunFiles(outputDir, RUN_FILES) : null;
  if (leftovers !== null) {
    say(`--output_dir ${outputDir}: clearing ${leftovers.join(', ')} left by a run that stopped before its first checkpoint`);
    await Promise.all(leftovers.map((f) => fsp.rm(path.join(outputDir, f), { recursive: true, force: true })));
  } else if (existing && existing.length > 0) {
    throw new UsageError(`--output_dir ${outputDir} already exists and is not empty; choose another folder, or pass --resume=true to continue its run`);
  }
  let config: SmolVLAConfig;
  try {
    const base = settings.policyPath !== undefined ? await readConfig(await policyFolder(given.get('policy.path') as string)) : freshBase(settings);
    config = applyConfigOverrides(base, settings.overrides);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const dataset = await openTrainingDataset(datasetSettings(settings), config);
  try {
    const model = await modelFor(settings, config, dataset, say);
    settings.outputDir = outputDir;
    return { settings, model, dataset, outputDir };
  } catch (e) {
    await dataset.close();
    throw e;
  }
}

/** A fresh model fitted to the dataset, or the --policy.path checkpoint (with any overridden fields). */
async function modelFor(settings: Settings, config: SmolVLAConfig, dataset: Dataset, say: (line: string) => void): Promise<SmolVLAModel> {
  if (settings.policyPath !== undefined) {
    checkDatasetFits(config, dataset);
    const changed = Object.keys(settings.overrides).length > 0;
    const loaded = await loadPolicy(settings.policyPath, changed ? config : null, {
      seed: settings.seed,
      device: settings.device,
      warmStartDelta: settings.warmStartDelta,
    });
    if (loaded.report.initialised.length > 0) {
      say(
        `${settings.policyPath}: ${loaded.report.initialised.length} delta-expert / CLS tensors were not in the checkpoint and start ` +
          (loaded.report.warmStarted ? 'from the main expert (warm start)' : `from the seed ${settings.seed}`),
      );
    }
    return loaded.model;
  }
  const fitted = fitConfigToDataset(config, dataset, new Set(Object.keys(settings.overrides)));
  return SmolVLAModel.create(fitted, { seed: settings.seed, device: settings.device });
}

/** A worker of a multi-process run: joins the group, one share of the machine's cores. */
async function joinGroup(env: DistributedEnv, values: Map<string, FlagValue>): Promise<ProcessGroup> {
  const get = <T>(name: string): T => flagValue<T>(values, ALL_FLAGS, name);
  if (get<number>('num_threads') === 0) setNumThreads(Math.max(1, Math.floor(os.availableParallelism() / env.localWorldSize)));
  return ProcessGroup.init(env, { timeoutMs: get<number>('dist.timeout_s') * 1000, device: get<string>('policy.device') });
}

const DISCARD: CliIO['stdout'] = { write: () => true } as unknown as CliIO['stdout'];

/** Runs `smolvla-node train <argv>`; resolves to the exit code (0 done, 1 failed or diverged, 2 usage, 130 interrupted). */
export async function runTrain(argv: readonly string[], cliIO: CliIO): Promise<number> {
  let parsed;
  let distEnv: DistributedEnv | null;
  try {
    parsed = parseFlags(argv, ALL_FLAGS);
    distEnv = distributedEnvFrom(process.env);
  } catch (e) {
    cliIO.stderr.write(`smolvla-node train: ${(e as Error).message}\n`);
    return 2;
  }
  if (parsed.help) {
    cliIO.stdout.write(trainHelp());
    return 0;
  }
  const numProcesses = flagValue<number>(parsed.values, ALL_FLAGS, 'num_processes');
  const numThreads = flagValue<number>(parsed.values, ALL_FLAGS, 'num_threads');
  if (numThreads > 0) setNumThreads(numThreads);
  if (distEnv === null && numProcesses > 1) {
    const timeoutS = flagValue<number>(parsed.values, ALL_FLAGS, 'dist.timeout_s');
    return launchWorkers({ numProcesses, io: cliIO, graceMs: timeoutS * 1000 + 10_000 });
  }
  // Rank 0 speaks for the run; the other workers print only their errors.
  const io: CliIO = distEnv && distEnv.rank !== 0 ? { stdout: DISCARD, stderr: cliIO.stderr } : cliIO;
  let group: ProcessGroup | null = null;
  for (const line of takeIgnoredFlags(parsed.values)) io.stderr.write(`${line}\n`);
  const controller = new AbortController();
  const signals = ['SIGINT', 'SIGTERM'] as const;
  const state: { received: NodeJS.Signals | null } = { received: null };
  // The first signal finishes the step, saves and reports; the handler is then removed, so a second
  // one takes Node's default action and ends the process at once.
  const onSignal = (signal: NodeJS.Signals) => {
    for (const s of signals) process.removeListener(s, onSignal);
    state.received = signal;
    io.stderr.write(`\n${signal === 'SIGINT' ? 'interrupted' : 'terminated'} (${signal}): finishing the current step, then saving a checkpoint and the report (a second signal quits without saving)\n`);
    controller.abort();
  };
  let progress: Progress | null = null;
  let prepared: Prepared | null = null;
  try {
    // The rendezvous comes first: a worker that cannot join fails before loading anything.
    if (distEnv) {
      // One GPU per worker: plain 'cuda' means this machine's LOCAL_RANK-th device.
      if (parsed.values.get('policy.device') === 'cuda') parsed.values.set('policy.device', `cuda:${distEnv.localRank}`);
      group = await joinGroup(distEnv, parsed.values);
    }
    const early = new Progress(io, 1);
    prepared = await prepare(parsed.values, (l) => early.log(l));
    const { settings: s, model, dataset } = prepared;
    if (group) {
      s.numProcesses = group.worldSize;
      // Every rank starts from rank 0's weights; also the barrier before rank 0 writes into output_dir.
      await group.broadcastModel(model);
    }
    const p = new Progress(io, s.logFreq);
    progress = p;
    const split = splitEpisodes(dataset, s.evalSplit);
    if (split.heldOut) p.log(`held out ${split.heldOutEpisodes.length} episode(s) for evaluation: ${split.heldOutEpisodes.join(', ')}`);
    const tokenizer = await tokenizerFor(model.config, {
      ...(prepared.resume ? { checkpointDir: prepared.resume.pretrainedDir } : s.policyPath !== undefined ? { checkpointDir: s.policyPath } : {}),
      ...(s.tokenizerPath !== undefined ? { path: s.tokenizerPath } : {}),
    });
    const { toBatch, normalizer } = datasetBatcher(model.config, dataset, tokenizer);
    const lossKey = model.config.trainDeltaExpert ? 'delta_loss' : 'loss';
    for (const sig of signals) process.on(sig, onSignal);
    const result: TrainResult = await train({
      model,
      dataset: split.train,
      evalDataset: split.heldOut,
      toBatch,
      steps: s.steps,
      batchSize: s.batchSize,
      seed: s.seed,
      outputDir: prepared.outputDir,
      logFreq: s.logFreq,
      saveFreq: s.saveFreq,
      saveCheckpoint: s.saveCheckpoint,
      evalSteps: s.evalSteps,
      maxEvalSamples: s.maxEvalSamples,
      normalizer,
      tokenizer,
      trainConfig: trainConfigJson(s, model.config, prepared.outputDir),
      ...(prepared.resume ? { resume: prepared.resume } : {}),
      signal: controller.signal,
      onLog: (l) => p.log(l),
      onStep: (i) => p.step({ step: i.step, totalSteps: i.totalSteps, loss: i.metrics[lossKey] ?? NaN, lr: i.lr, gradNorm: i.gradNorm, metrics: i.metrics }),
      distributed: group ? { group, bucketMb: s.distBucketMb, checkSync: s.distCheckSync } : null,
    });
    p.stop();
    const report = path.join(prepared.outputDir, REPORT_FILE);
    const where = result.lastCheckpoint ? `; last checkpoint ${result.lastCheckpoint}` : '';
    if (result.status === 'diverged') {
      io.stderr.write(`smolvla-node train: ${result.message}\n`);
      return 1;
    }
    if (result.status === 'cancelled') {
      const signal = state.received ?? 'SIGINT';
      io.stdout.write(`${signal === 'SIGTERM' ? 'terminated' : 'interrupted'} at step ${result.step}${where}; report ${report}\n`);
      return signal === 'SIGTERM' ? 143 : 130;
    }
    io.stdout.write(`done: ${result.step} steps${where}; report ${report}\n`);
    return 0;
  } catch (e) {
    progress?.stop();
    io.stderr.write(`smolvla-node train: ${(e as Error).message}\n`);
    // A failed worker must not linger: a collective still running on the thread pool would keep it alive.
    if (group) setTimeout(() => process.exit(1), 2000).unref();
    return e instanceof UsageError ? 2 : 1;
  } finally {
    for (const sig of signals) process.removeListener(sig, onSignal);
    await prepared?.dataset.close();
  }
}

