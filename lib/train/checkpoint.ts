/**
 * Training checkpoints in LeRobot's layout (`utils/train_utils.py`, `constants.py`):
 *
 *   <output_dir>/checkpoints/<step, zero-padded to max(6, digits of total steps)>/
 *     pretrained_model/   config.json (+ smolvla_node.json), model.safetensors (with the normalisation
 *                         statistics, so the folder loads standalone), the processor files
 *                         (policy_preprocessor.json / policy_postprocessor.json and their state
 *                         files, with the same statistics), train_config.json, and the tokenizer
 *                         (tokenizer.json, tokenizer_config.json: LeRobot fetches it by name instead)
 *     training_state/     LeRobot's files (see ./lerobotState.ts) plus loader_state.json and
 *                         metrics_state.json, which Python ignores
 *   <output_dir>/checkpoints/last -> <step>   (relative symlink)
 *
 * The RNG streams do not carry over between Python and here: every step here reseeds libtorch from
 * (seed, step) — which makes a resumed run draw the same noise as a straight one — while Python
 * continues its generators from rng_state.safetensors.
 *
 * Saving is atomic: everything goes into a hidden sibling folder, is fsynced, and is renamed into
 * place; only then does `last` move (a symlink swapped by rename). A crash at any point leaves the
 * previous checkpoints and `last` as they were.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

import { readJsonFile } from '../util/files';
import type { BatchLoaderState } from '../data';
import type { SmolVLAModel, TensorDict } from '../model';
import type { Normalizer } from '../policy/normalize';
import { writeProcessorFiles } from '../policy/processorFiles';
import type { VlmTokenizer } from '../policy/tokenizer';
import {
  nativeOptimizerFileFrom,
  trainingStepJson,
  TRAINING_STEP,
  writeLerobotOptimizerFiles,
} from './lerobotState';
import type { Optimizer } from './optimizer';
import { SmolVLAError } from '../errors';

export { TRAINING_STEP } from './lerobotState';

export const CHECKPOINTS_DIR = 'checkpoints';
export const LAST_CHECKPOINT_LINK = 'last';
export const PRETRAINED_MODEL_DIR = 'pretrained_model';
export const TRAINING_STATE_DIR = 'training_state';
export const TRAIN_CONFIG = 'train_config.json';
/** Where checkpoints of earlier versions of this project kept the run seed. */
const LEGACY_RNG_STATE = 'rng_state.json';
export const LOADER_STATE = 'loader_state.json';
export const METRICS_STATE = 'metrics_state.json';

/**
 * Fault injection for the crash-safety tests: `SMOLVLA_NODE_CRASH_IN_SAVE=<step>:<n>` kills the
 * process (SIGKILL, no cleanup) in the save of `<step>` after its n-th write (the model, the
 * tokenizer, then one file each), `<step>:renamed` once the finished folder is in place but before
 * `last` moves.
 */
export const CRASH_ENV = 'SMOLVLA_NODE_CRASH_IN_SAVE';

/** LeRobot's get_step_identifier: the step zero-padded to max(6, digits of the total). */
export function stepIdentifier(step: number, totalSteps: number): string {
  return String(step).padStart(Math.max(6, String(totalSteps).length), '0');
}

/** What a resumed run needs besides the model and optimizer tensors. */
export interface TrainingState {
  /** Optimizer updates taken. */
  step: number;
  /** Run seed (the per-step RNG seeds derive from it). */
  seed: number;
  /** Loader position after the last trained batch. */
  loader: BatchLoaderState;
  /** Length of metrics.jsonl at the checkpoint: lines after it belong to a run that did not survive. */
  metricsBytes: number;
}

export interface SchedulerSnapshot {
  peakLr: number;
  decayLr: number;
  warmupSteps: number;
  decaySteps: number;
  /** Learning rate of the next update. */
  nextLr: number;
}

export interface SaveCheckpointOptions {
  outputDir: string;
  step: number;
  totalSteps: number;
  model: SmolVLAModel;
  /** Tensors stored next to the weights (normalisation statistics). */
  extraTensors: TensorDict;
  /** The statistics again, written as LeRobot's processor files. */
  normalizer: Normalizer;
  /** Saved beside the weights so the checkpoint loads with its tokenizer. */
  tokenizer?: VlmTokenizer;
  optimizer: Optimizer;
  /** The run's settings, written as pretrained_model/train_config.json. */
  trainConfig: Record<string, unknown>;
  state: TrainingState;
  scheduler: SchedulerSnapshot;
}

async function fsyncPath(p: string): Promise<void> {
  const handle = await fsp.open(p, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function fsyncTree(dir: string): Promise<void> {
  for (const entry of await fsp.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) await fsyncTree(p);
    else await fsyncPath(p);
  }
  await fsyncPath(dir);
}

async function writeJson(file: string, value: unknown): Promise<void> {
  await fsp.writeFile(file, `${JSON.stringify(value, null, 4)}\n`);
}

/** The point of this save at which CRASH_ENV asks to die: a write count, or 'renamed'. */
function crashPoint(step: number): number | 'renamed' | null {
  const m = /^(\d+):(\d+|renamed)$/.exec(process.env[CRASH_ENV] ?? '');
  if (!m || Number(m[1]) !== step) return null;
  return m[2] === 'renamed' ? 'renamed' : Number(m[2]);
}

async function exists(p: string): Promise<boolean> {
  return fsp.access(p).then(
    () => true,
    () => false,
  );
}

/** Step folders whose save completed (training_step.json is written last), oldest first. */
async function completeCheckpoints(checkpointsDir: string): Promise<string[]> {
  const ids = (await fsp.readdir(checkpointsDir)).filter((n) => /^\d+$/.test(n)).sort((a, b) => Number(a) - Number(b));
  const complete = await Promise.all(ids.map((id) => exists(path.join(checkpointsDir, id, TRAINING_STATE_DIR, TRAINING_STEP))));
  return ids.filter((_, i) => complete[i]);
}

/**
 * The files a run leaves when it stops before its first checkpoint completes (metrics.jsonl, the
 * report, a half-written step folder): the names of `outputDir`'s entries when it holds nothing
 * else, null when it holds anything more (a complete checkpoint or unrelated files). Such a run
 * cannot be resumed; a fresh start may clear these and begin again.
 */
export async function uncheckpointedRunFiles(outputDir: string, runFiles: readonly string[]): Promise<string[] | null> {
  const entries = await fsp.readdir(outputDir).catch(() => [] as string[]);
  if (entries.some((e) => e !== CHECKPOINTS_DIR && !runFiles.includes(e))) return null;
  if (entries.includes(CHECKPOINTS_DIR)) {
    const checkpointsDir = path.join(outputDir, CHECKPOINTS_DIR);
    const stat = await fsp.lstat(checkpointsDir);
    if (!stat.isDirectory()) return null;
    const inside = await fsp.readdir(checkpointsDir);
    if (inside.includes(LAST_CHECKPOINT_LINK) || (await completeCheckpoints(checkpointsDir)).length > 0) return null;
    // Only numbered step folders and the temporary files a save makes.
    if (inside.some((n) => !/^\d+$/.test(n) && !n.startsWith('.tmp-') && !n.endsWith('.tmp'))) return null;
  }
  return entries;
}

/** Points `checkpoints/last` at `target` (a sibling folder name) by renaming a fresh symlink over it. */
async function updateLast(checkpointsDir: string, target: string): Promise<void> {
  const link = path.join(checkpointsDir, LAST_CHECKPOINT_LINK);
  const tmp = path.join(checkpointsDir, `.last-${process.pid}.tmp`);
  await fsp.rm(tmp, { force: true });
  await fsp.symlink(target, tmp);
  await fsp.rename(tmp, link);
  await fsyncPath(checkpointsDir);
}

/** Writes the checkpoint of `step` atomically and moves `last` to it; returns its folder. */
export async function saveCheckpoint(o: SaveCheckpointOptions): Promise<string> {
  const checkpointsDir = path.join(o.outputDir, CHECKPOINTS_DIR);
  await fsp.mkdir(checkpointsDir, { recursive: true });
  // Leftovers of a save that crashed: never referenced by `last`, safe to drop.
  for (const name of await fsp.readdir(checkpointsDir)) {
    if (name.startsWith('.tmp-') || name.startsWith('.old-')) await fsp.rm(path.join(checkpointsDir, name), { recursive: true, force: true });
  }
  const id = stepIdentifier(o.step, o.totalSteps);
  const finalDir = path.join(checkpointsDir, id);
  const tmpDir = path.join(checkpointsDir, `.tmp-${id}-${process.pid}`);
  const crash = crashPoint(o.step);
  let written = 0;
  const wrote = () => {
    if (++written === crash) process.kill(process.pid, 'SIGKILL');
  };

  const modelDir = path.join(tmpDir, PRETRAINED_MODEL_DIR);
  const stateDir = path.join(tmpDir, TRAINING_STATE_DIR);
  await fsp.mkdir(modelDir, { recursive: true });
  await fsp.mkdir(stateDir, { recursive: true });
  await o.model.save(modelDir, o.extraTensors);
  wrote();
  if (o.tokenizer) {
    await o.tokenizer.save(modelDir);
    wrote();
  }
  await writeProcessorFiles(modelDir, o.model.config, o.normalizer);
  wrote();
  await writeJson(path.join(modelDir, TRAIN_CONFIG), o.trainConfig);
  wrote();
  const nativeFile = path.join(tmpDir, 'native_optimizer_state.safetensors');
  await o.optimizer.saveState(nativeFile);
  const c = o.model.config;
  await writeLerobotOptimizerFiles(
    stateDir,
    nativeFile,
    await o.model.parameterNames(),
    { lr: o.scheduler.nextLr, initialLr: o.scheduler.peakLr, betas: c.optimizerBetas, eps: c.optimizerEps, weightDecay: c.optimizerWeightDecay },
    { peakLr: o.scheduler.peakLr, nextLr: o.scheduler.nextLr },
  );
  await fsp.rm(nativeFile);
  wrote();
  await writeJson(path.join(stateDir, LOADER_STATE), o.state.loader);
  wrote();
  await writeJson(path.join(stateDir, METRICS_STATE), { metrics_bytes: o.state.metricsBytes });
  wrote();
  // Written last: a training_state without it is incomplete by construction.
  await writeJson(path.join(stateDir, TRAINING_STEP), trainingStepJson(o.step, o.state.loader.batchSize));
  wrote();
  await fsyncTree(tmpDir);

  let old: string | null = null;
  if (await exists(finalDir)) {
    // Replacing a step's folder (a run resumed from an older checkpoint reached it again): `last`
    // must not point at it while it is briefly absent, so it falls back to the newest other one.
    const lastTarget = await fsp.readlink(path.join(checkpointsDir, LAST_CHECKPOINT_LINK)).catch(() => null);
    const fallback = (await completeCheckpoints(checkpointsDir)).filter((d) => d !== id).pop();
    if (lastTarget === id && fallback) await updateLast(checkpointsDir, fallback);
    old = path.join(checkpointsDir, `.old-${id}-${process.pid}`);
    await fsp.rename(finalDir, old);
  }
  await fsp.rename(tmpDir, finalDir);
  await fsyncPath(checkpointsDir);
  if (crash === 'renamed') process.kill(process.pid, 'SIGKILL');
  await updateLast(checkpointsDir, id);
  if (old) await fsp.rm(old, { recursive: true, force: true });
  return finalDir;
}

/** Folders of a checkpoint found from any path a user may give for it. */
export interface CheckpointPaths {
  /** `<output_dir>/checkpoints/<step>` (symlinks resolved). */
  checkpointDir: string;
  pretrainedDir: string;
  trainingStateDir: string;
  trainConfigFile: string;
  /** The run's output folder (two levels above the checkpoint). */
  outputDir: string;
}

/**
 * Accepts what LeRobot's `--config_path` takes (`…/pretrained_model/train_config.json`) and also the
 * pretrained_model folder, the step folder, `checkpoints/last`, or a run's output folder (its last
 * checkpoint).
 */
export async function locateCheckpoint(given: string): Promise<CheckpointPaths> {
  let p = path.resolve(given);
  const stat = await fsp.stat(p).catch(() => null);
  if (!stat) throw new SmolVLAError('ERR_SMOLVLA_IO', `config_path: ${p} does not exist (expected a checkpoint's pretrained_model/${TRAIN_CONFIG})`);
  if (stat.isFile()) p = path.dirname(p);
  if (path.basename(p) !== PRETRAINED_MODEL_DIR) {
    const candidates = [
      path.join(p, PRETRAINED_MODEL_DIR),
      path.join(p, CHECKPOINTS_DIR, LAST_CHECKPOINT_LINK, PRETRAINED_MODEL_DIR),
    ];
    const found = (await Promise.all(candidates.map((c) => fsp.stat(c).then(() => c, () => null)))).find((c) => c !== null);
    if (!found) throw new SmolVLAError('ERR_SMOLVLA_IO', `config_path: ${p} is not a checkpoint (no ${PRETRAINED_MODEL_DIR}/ in it or under ${CHECKPOINTS_DIR}/${LAST_CHECKPOINT_LINK}/)`);
    p = found;
  }
  const checkpointDir = await fsp.realpath(path.dirname(p));
  const paths: CheckpointPaths = {
    checkpointDir,
    pretrainedDir: path.join(checkpointDir, PRETRAINED_MODEL_DIR),
    trainingStateDir: path.join(checkpointDir, TRAINING_STATE_DIR),
    trainConfigFile: path.join(checkpointDir, PRETRAINED_MODEL_DIR, TRAIN_CONFIG),
    outputDir: path.dirname(path.dirname(checkpointDir)),
  };
  for (const f of [paths.trainConfigFile, path.join(paths.trainingStateDir, TRAINING_STEP)]) {
    await fsp.access(f).catch(() => {
      throw new SmolVLAError('ERR_SMOLVLA_IO', `checkpoint ${checkpointDir} is incomplete: ${f} is missing`);
    });
  }
  return paths;
}

async function readJson(file: string): Promise<Record<string, unknown>> {
  let value: unknown;
  try {
    value = await readJsonFile(file);
  } catch (e) {
    throw new SmolVLAError('ERR_SMOLVLA_IO', `${file}: cannot read: ${(e as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new SmolVLAError('ERR_SMOLVLA_IO', `${file}: expected a JSON object`);
  return value as Record<string, unknown>;
}

function integerField(obj: Record<string, unknown>, key: string, file: string): number {
  const v = obj[key];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new SmolVLAError('ERR_SMOLVLA_IO', `${file}: '${key}' must be a non-negative integer, got ${JSON.stringify(v)}`);
  return v;
}

export async function readTrainConfig(paths: CheckpointPaths): Promise<Record<string, unknown>> {
  return readJson(paths.trainConfigFile);
}

/**
 * Reads training_state/ (the optimizer tensors are loaded separately, by loadOptimizerState). A
 * checkpoint written by Python LeRobot has no loader or metrics state: `loader` is null then (the data
 * order starts afresh), the metrics log is kept whole and the seed comes from train_config.json.
 */
export async function readTrainingState(paths: CheckpointPaths): Promise<Omit<TrainingState, 'loader'> & { loader: BatchLoaderState | null }> {
  const dir = paths.trainingStateDir;
  const stepFile = path.join(dir, TRAINING_STEP);
  const step = integerField(await readJson(stepFile), 'step', stepFile);
  const metricsFile = path.join(dir, METRICS_STATE);
  const metricsBytes = (await exists(metricsFile)) ? integerField(await readJson(metricsFile), 'metrics_bytes', metricsFile) : -1;
  const loaderFile = path.join(dir, LOADER_STATE);
  const loader = (await exists(loaderFile)) ? ((await readJson(loaderFile)) as unknown as BatchLoaderState) : null;
  // The run seed: the loader's (it is the run's), an older checkpoint's rng_state.json, else the
  // run's settings (a checkpoint written by Python LeRobot).
  const legacy = path.join(dir, LEGACY_RNG_STATE);
  const seed = loader ? loader.seed : ((await exists(legacy)) ? await readJson(legacy) : await readTrainConfig(paths)).seed;
  if (typeof seed !== 'number' || !Number.isSafeInteger(seed)) throw new SmolVLAError('ERR_SMOLVLA_IO', `${dir}: the run seed must be an integer, got ${JSON.stringify(seed)}`);
  return { step, seed, loader, metricsBytes };
}

/** Loads the checkpoint's optimizer state (LeRobot's format) into `optimizer`; returns its step count. */
export async function loadOptimizerState(optimizer: Optimizer, model: SmolVLAModel, paths: CheckpointPaths): Promise<number> {
  const converted = await nativeOptimizerFileFrom(paths.trainingStateDir, await model.parameterNames());
  try {
    await optimizer.loadState(converted.file);
  } finally {
    await converted.cleanup();
  }
  return converted.step;
}
