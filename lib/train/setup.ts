/**
 * What a training run is built from: the dataset (a local LeRobot folder or the built-in synthetic
 * one), a model config that fits it (fresh from a preset, or a checkpoint's with overrides), the
 * tokenizer, and the normalisation statistics.
 */
import { existsSync, promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { cameraKeys, configToJson, parseConfig, writeConfig, type Features, type SmolVLAConfig } from '../config';
import { ACTION_KEY, STATE_KEY, openLeRobotDataset, sceneEpisodesDataset, syntheticDataset, type Dataset } from '../data';
import { actionDim, stateDim } from '../config';
import { SmolVLAModel, type LoadOptions, type LoadReport } from '../model';
import { loadTokenizer, type VlmTokenizer } from '../policy/tokenizer';
import { byteTokenizer } from './byteTokenizer';
import { TINY_VLM_NAME } from './presets';
import { SmolVLAError } from '../errors';

/**
 * The built-in datasets: 'blocks' (moving blocks, lib/data/synthetic.ts) and 'scenes' (the demo
 * simulator's camera, scene changes and moving target, lib/data/sceneEpisodes.ts).
 */
export const BUILT_IN_DATASETS = ['blocks', 'scenes'] as const;
export type BuiltInDataset = (typeof BUILT_IN_DATASETS)[number];

export interface DatasetSettings {
  /** A LeRobot dataset id; none: a built-in dataset. */
  repoId?: string;
  /** The dataset folder (default: $HF_LEROBOT_HOME/<repoId>, then the LeRobot cache). */
  root?: string;
  /** Which built-in dataset without `repoId` (default 'blocks'). */
  builtIn?: BuiltInDataset;
}

const EMPTY_CAMERA = 'observation.images.empty_camera_';

/** The config's real cameras (image features without the empty-camera placeholders). */
function realCameras(config: SmolVLAConfig): string[] {
  return cameraKeys(config).filter((k) => !k.startsWith(EMPTY_CAMERA));
}

/** A built-in dataset shaped like `config`'s features (one image size for every camera; 'scenes' has one camera). */
export function syntheticFor(config: SmolVLAConfig, kind: BuiltInDataset = 'blocks'): Dataset {
  const cams = realCameras(config);
  if (cams.length === 0) throw new SmolVLAError('ERR_SMOLVLA_CONFIG', 'synthetic dataset: the policy config has no image feature (input_features with type VISUAL)');
  const shapes = cams.map((k) => config.inputFeatures[k]?.shape ?? []);
  const [c, h, w] = shapes[0] as number[];
  if (c !== 3 || !h || !w || shapes.some((s) => s.join() !== shapes[0]!.join())) {
    throw new SmolVLAError('ERR_SMOLVLA_CONFIG', `synthetic dataset: every camera must have one shape [3, H, W], got ${shapes.map((s) => `[${s.join(', ')}]`).join(', ')}`);
  }
  if (kind === 'scenes') {
    if (cams.length !== 1) throw new SmolVLAError('ERR_SMOLVLA_CONFIG', `the 'scenes' dataset has one camera, the policy config has ${cams.length}: ${cams.join(', ')}`);
    return sceneEpisodesDataset({ chunkSize: config.chunkSize, cameraKey: cams[0]!, imageSize: [w, h], stateDim: stateDim(config), actionDim: actionDim(config), seed: 0 });
  }
  return syntheticDataset({
    chunkSize: config.chunkSize,
    cameraKeys: cams,
    imageSize: [w, h],
    stateDim: stateDim(config),
    actionDim: actionDim(config),
    seed: 0,
  });
}

/** Opens the LeRobot dataset, or a built-in one when no repo id is given. */
export async function openTrainingDataset(settings: DatasetSettings, config: SmolVLAConfig): Promise<Dataset> {
  if (settings.repoId === undefined) {
    if (settings.root !== undefined) throw new SmolVLAError('ERR_SMOLVLA_CONFIG', '--dataset.root needs --dataset.repo_id (the dataset id the folder holds)');
    return syntheticFor(config, settings.builtIn);
  }
  if (settings.builtIn !== undefined) throw new SmolVLAError('ERR_SMOLVLA_CONFIG', `--dataset.built_in=${settings.builtIn} is a built-in dataset: it cannot go with --dataset.repo_id`);
  return openLeRobotDataset({ repoId: settings.repoId, ...(settings.root !== undefined ? { root: settings.root } : {}), chunkSize: config.chunkSize });
}

/** A dataset camera's policy feature shape (C, H, W) from info.json's (H, W, C) as LeRobot permutes it. */
function imageShape(ds: Dataset, key: string): number[] {
  const spec = ds.features[key];
  if (!spec || spec.shape.length !== 3) throw new SmolVLAError('ERR_SMOLVLA_CONFIG', `dataset '${ds.repoId}': camera '${key}' has no 3-D shape in meta/info.json`);
  const names = Array.isArray(spec.names) ? (spec.names as unknown[]) : null;
  const channelsLast = names ? names[2] === 'channels' || names[2] === 'channel' : spec.shape[2] === 3;
  const [a, b, c] = spec.shape as [number, number, number];
  return channelsLast ? [c, a, b] : [a, b, c];
}

/**
 * A fresh model's config for `ds`: the dataset's cameras, state and action as input/output features
 * (unless the user set them), max_state_dim / max_action_dim raised to the dataset's widths if needed.
 */
export function fitConfigToDataset(config: SmolVLAConfig, ds: Dataset, userSet: ReadonlySet<string>): SmolVLAConfig {
  const inputFeatures: Features = {};
  for (const key of ds.cameraKeys) inputFeatures[key] = { type: 'VISUAL', shape: imageShape(ds, key) };
  inputFeatures[STATE_KEY] = { type: 'STATE', shape: [ds.stateDim] };
  return parseConfig({
    ...configToJson(config),
    ...(userSet.has('input_features') ? {} : { input_features: inputFeatures }),
    ...(userSet.has('output_features') ? {} : { output_features: { [ACTION_KEY]: { type: 'ACTION', shape: [ds.actionDim] } } }),
    max_state_dim: userSet.has('max_state_dim') ? config.maxStateDim : Math.max(config.maxStateDim, ds.stateDim),
    max_action_dim: userSet.has('max_action_dim') ? config.maxActionDim : Math.max(config.maxActionDim, ds.actionDim),
  });
}

/** Refuses a dataset whose cameras or vector widths differ from a loaded checkpoint's features. */
export function checkDatasetFits(config: SmolVLAConfig, ds: Dataset): void {
  const missing = realCameras(config).filter((k) => !ds.cameraKeys.includes(k));
  if (missing.length > 0) {
    throw new SmolVLAError('ERR_SMOLVLA_CONFIG', `dataset '${ds.repoId}' lacks the policy's camera(s) ${missing.join(', ')} (it has ${ds.cameraKeys.join(', ') || 'none'})`);
  }
  if (ds.stateDim !== stateDim(config)) throw new SmolVLAError('ERR_SMOLVLA_CONFIG', `dataset '${ds.repoId}': observation.state has ${ds.stateDim} values, the policy expects ${stateDim(config)}`);
  if (ds.actionDim !== actionDim(config)) throw new SmolVLAError('ERR_SMOLVLA_CONFIG', `dataset '${ds.repoId}': action has ${ds.actionDim} values, the policy expects ${actionDim(config)}`);
}

/** `config` with config.json-style (snake_case) overrides applied and validated; errors name the key. */
export function applyConfigOverrides(config: SmolVLAConfig, overrides: Readonly<Record<string, unknown>>): SmolVLAConfig {
  if (Object.keys(overrides).length === 0) return config;
  try {
    return parseConfig({ ...configToJson(config), ...overrides });
  } catch (e) {
    throw new SmolVLAError('ERR_SMOLVLA_CONFIG', `invalid policy configuration: ${(e as Error).message}`);
  }
}

/**
 * Loads a checkpoint folder with `config` in place of its config.json (when --policy.<field> flags
 * changed it): a temporary folder holds the new config.json and a link to the weights.
 */
export async function loadPolicy(dir: string, config: SmolVLAConfig | null, options: LoadOptions): Promise<{ model: SmolVLAModel; report: LoadReport }> {
  if (!config) return SmolVLAModel.fromPretrained(dir, options);
  const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'smolvla-policy-'));
  try {
    await writeConfig(tmp, config);
    await fsp.symlink(path.resolve(dir, 'model.safetensors'), path.join(tmp, 'model.safetensors'));
    return await SmolVLAModel.fromPretrained(tmp, options);
  } finally {
    await fsp.rm(tmp, { recursive: true, force: true });
  }
}

/**
 * The tokenizer for `config`: a tokenizer.json in the checkpoint folder or at the explicit path, then
 * the byte tokenizer for the built-in tiny model, else the VLM's (local vlm_model_name folder or the
 * Hugging Face cache).
 */
export async function tokenizerFor(config: SmolVLAConfig, where: { checkpointDir?: string; path?: string }): Promise<VlmTokenizer> {
  const saved = where.checkpointDir !== undefined && existsSync(path.join(where.checkpointDir, 'tokenizer.json'));
  const tokenizer =
    config.vlmModelName === TINY_VLM_NAME && where.path === undefined && !saved
      ? byteTokenizer()
      : await loadTokenizer({ ...where, vlmModelName: config.vlmModelName });
  const vocab = config.vlmBackbone.textConfig.vocabSize;
  if (tokenizer.maxTokenId >= vocab) {
    throw new SmolVLAError('ERR_SMOLVLA_CONFIG', `tokenizer: it produces ids up to ${tokenizer.maxTokenId}, the model's vocabulary (vlm_backbone.text_config.vocab_size) has ${vocab}`);
  }
  return tokenizer;
}
