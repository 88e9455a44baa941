/**
 * LeRobot `config.json` <-> SmolVLAConfig. Reading then writing loses nothing: keys this project does
 * not model go to `extra` and are written back; `vlm_backbone` is always written, into the side file
 * `smolvla_node.json` so that Python LeRobot can parse config.json (see ./lerobot.ts).
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

import { decodeVlmBackbone, resolveBackbone, vlmBackboneToJson, type VlmBackbone } from './backbone';
import {
  array,
  boolean,
  cloneJson,
  decodeObject,
  dictionary,
  encodeObject,
  type Decoder,
  type Fields,
  integer,
  number,
  object,
  pair,
  string,
  stringAs,
} from './decode';
import {
  CONFIG_DEFAULTS,
  CONFIG_FIELD_NAMES,
  type ConfigFields,
  type Features,
  type FeatureType,
  type NormalizationMode,
  type PadLanguageTo,
  type PolicyFeature,
  RESERVED_KEYS,
  type SmolVLAConfig,
} from './schema';
import { mergeConfigJson, SIDE_CONFIG_FILE, splitConfigJson } from './lerobot';
import { SmolVLAError } from '../errors';
import { makeDirectory, readJsonFile } from '../util/files';
import { checkExtraKeys, validateConfig } from './validate';

const feature: Decoder<PolicyFeature> = (v, where) => {
  const { type, shape, ...rest } = object(v, where);
  const unknown = Object.keys(rest)[0];
  if (unknown !== undefined) throw new SmolVLAError('ERR_SMOLVLA_CONFIG', `${where}: unknown key "${unknown}" (a feature has only "type" and "shape")`);
  return { type: stringAs<FeatureType>()(type, `${where}.type`), shape: array(integer)(shape, `${where}.shape`) };
};

/** LeRobot writes null for "infer from the dataset"; that is read as no features. */
const features: Decoder<Features> = (v, where) => (v === null ? {} : dictionary(feature)(v, where));

/** Every modelled key, in the order configToJson writes them. */
const FIELDS: Fields<ConfigFields> = {
  nObsSteps: integer,
  chunkSize: integer,
  nActionSteps: integer,
  maxStateDim: integer,
  maxActionDim: integer,
  resizeImgsWithPadding: pair(integer),
  emptyCameras: integer,
  adaptToPiAloha: boolean,
  useDeltaJointActionsAloha: boolean,
  tokenizerMaxLength: integer,
  padLanguageTo: stringAs<PadLanguageTo>(),
  numSteps: integer,
  useCache: boolean,
  prefixLength: integer,
  addImageSpecialTokens: boolean,
  attentionMode: string,
  numExpertLayers: integer,
  numVlmLayers: integer,
  selfAttnEveryNLayers: integer,
  expertWidthMultiplier: number,
  minPeriod: number,
  maxPeriod: number,
  vlmModelName: string,
  loadVlmWeights: boolean,
  loadExpertWeights: boolean,
  inputFeatures: features,
  outputFeatures: features,
  normalizationMapping: dictionary(stringAs<NormalizationMode>()),
  freezeVisionEncoder: boolean,
  trainExpertOnly: boolean,
  trainStateProj: boolean,
  optimizerLr: number,
  optimizerBetas: pair(number),
  optimizerEps: number,
  optimizerWeightDecay: number,
  optimizerGradClipNorm: number,
  schedulerWarmupSteps: integer,
  schedulerDecaySteps: integer,
  schedulerDecayLr: number,
  trainDeltaExpert: boolean,
  useClsHead: boolean,
  numClsPrefix: integer,
  numClsSuffix: integer,
  vicregWeight: number,
  vicregLambda: number,
  vicregMu: number,
  vicregNu: number,
  clsNoiseScale: number,
  clsSimilarityThreshold: number,
};


/**
 * Parses a LeRobot SmolVLA `config.json` object (already JSON-parsed). Missing keys take the
 * defaults, the backbone is resolved, and the result is validated.
 */
export function parseConfig(json: unknown): SmolVLAConfig {
  const root = object(json, 'config.json');
  if (root.type !== undefined && root.type !== 'smolvla') {
    throw new SmolVLAError('ERR_SMOLVLA_CONFIG', `type: expected "smolvla", received ${JSON.stringify(root.type)} (not a SmolVLA config)`);
  }
  const { value, unknown } = decodeObject(root, '', FIELDS, CONFIG_DEFAULTS);
  const backbone = root.vlm_backbone != null ? decodeVlmBackbone(root.vlm_backbone) : resolveBackbone(value.vlmModelName);
  const extra = Object.fromEntries(unknown.filter(([k]) => !RESERVED_KEYS.includes(k)).map(([k, v]) => [k, cloneJson(v)]));
  const config: SmolVLAConfig = { ...value, vlmBackbone: backbone, extra };
  validateConfig(config);
  return config;
}

function toJson(config: ConfigFields & { vlmBackbone?: VlmBackbone; extra?: Record<string, unknown> }): Record<string, unknown> {
  const json: Record<string, unknown> = { type: 'smolvla', ...encodeObject(config, FIELDS) };
  if (config.vlmBackbone) json.vlm_backbone = vlmBackboneToJson(config.vlmBackbone);
  for (const [key, v] of Object.entries(config.extra ?? {})) if (!(key in json)) json[key] = cloneJson(v);
  return json;
}

/** The config.json object (snake_case, `"type": "smolvla"` first, `vlm_backbone` always, then `extra`). */
export function configToJson(config: SmolVLAConfig): Record<string, unknown> {
  return toJson(config);
}

/**
 * The Defaults with `overrides` applied, validated. The backbone is resolved from
 * `vlmModelName` unless `overrides.vlmBackbone` is given. Overrides are type-checked like config.json.
 */
export function defaultConfig(overrides: Partial<SmolVLAConfig> = {}): SmolVLAConfig {
  const known = new Set<string>([...CONFIG_FIELD_NAMES, 'vlmBackbone', 'extra']);
  const stray = Object.keys(overrides).find((k) => !known.has(k));
  if (stray !== undefined) throw new SmolVLAError('ERR_SMOLVLA_CONFIG', `defaultConfig: unknown field "${stray}"`);
  if (overrides.extra) checkExtraKeys(overrides.extra); // toJson would let a modelled key shadow them
  return parseConfig(toJson({ ...CONFIG_DEFAULTS, ...overrides }));
}

async function readJsonObject(file: string, what: string): Promise<Record<string, unknown>> {
  let json: unknown;
  try {
    json = await readJsonFile(file);
  } catch (e) {
    throw new SmolVLAError('ERR_SMOLVLA_IO', `${file}: cannot read the ${what}: ${(e as Error).message}`, { cause: e });
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new SmolVLAError('ERR_SMOLVLA_CONFIG', `${file}: expected a JSON object`);
  return json as Record<string, unknown>;
}

/**
 * Reads and parses `<dir>/config.json` together with the side file `smolvla_node.json` when present
 * (the keys Python LeRobot does not know, written there by writeConfig); errors name the file.
 */
export async function readConfig(dir: string): Promise<SmolVLAConfig> {
  const file = path.join(dir, 'config.json');
  const sideFile = path.join(dir, SIDE_CONFIG_FILE);
  const lerobot = await readJsonObject(file, 'config');
  const side = fs.existsSync(sideFile) ? await readJsonObject(sideFile, 'side config') : null;
  try {
    return parseConfig(mergeConfigJson(lerobot, side));
  } catch (e) {
    throw new SmolVLAError('ERR_SMOLVLA_CONFIG', `${file}${side ? ` (with ${SIDE_CONFIG_FILE})` : ''}: ${(e as Error).message}`, { cause: e });
  }
}

/** Writes `file` atomically: temporary file, fsync, rename. */
async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    const handle = await fsp.open(tmp, 'w');
    try {
      await handle.writeFile(`${JSON.stringify(value, null, 4)}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fsp.rename(tmp, file);
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw e;
  }
}

/**
 * Validates and writes `<dir>/config.json` (only the keys Python LeRobot's SmolVLA config knows) and
 * `<dir>/smolvla_node.json` (the rest: backbone dimensions, unused fork keys) atomically — each a
 * temporary file, fsync, rename, then an fsync of the folder: a crash leaves each file old or new,
 * never torn. The side file is written first so a new config.json never pairs with a missing one.
 * Creates `dir` if needed.
 */
export async function writeConfig(dir: string, config: SmolVLAConfig): Promise<void> {
  validateConfig(config);
  await makeDirectory(dir);
  const { lerobot, side } = splitConfigJson(configToJson(config));
  await writeJsonAtomic(path.join(dir, SIDE_CONFIG_FILE), side);
  await writeJsonAtomic(path.join(dir, 'config.json'), lerobot);
  const folder = await fsp.open(dir, 'r');
  try {
    await folder.sync(); // makes the renames themselves durable
  } finally {
    await folder.close();
  }
}
