/**
 * The VLM's tokenizer: a Hugging Face `tokenizer.json` (+ `tokenizer_config.json`)
 * run by @huggingface/tokenizers, used as LeRobot's SmolVLA uses it: the task text with a newline
 * appended, special tokens as the tokenizer's post-processor adds them (transformers' default
 * add_special_tokens=True; SmolVLM2's ByteLevel post-processor adds none), truncated to
 * tokenizer_max_length, padded on the right to the longest row or to tokenizer_max_length.
 * Checkpoints carry no tokenizer, so `loadTokenizer` searches the places listed below.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { Tokenizer } from '@huggingface/tokenizers';

import type { PadLanguageTo } from '../config';
import type { TokenIds } from '../model';
import { SmolVLAError } from '../errors';
import { readJsonFile } from '../util/files';

/** SmolVLM's image framing tokens (LeRobot: start = [fake, global], end = [fake]). */
export const FAKE_IMAGE_TOKEN = '<fake_token_around_image>';
export const GLOBAL_IMAGE_TOKEN = '<global-img>';

export interface TokenizeOptions {
  /** tokenizer_max_length: rows are truncated to it. */
  maxLength: number;
  /** pad_language_to: 'longest' pads to the longest row of the batch, 'max_length' to maxLength. */
  padTo: PadLanguageTo;
}

/** Right-padded token rows: row b is ids[b * length ... (b + 1) * length). */
export interface TokenizedBatch {
  batchSize: number;
  length: number;
  ids: Int32Array;
  /** 1 for real tokens, 0 for padding. */
  mask: Uint8Array;
}

/** What batching needs from a tokenizer: VlmTokenizer, or any tokenizer with the same padding contract. */
export interface TaskTokenizer {
  tokenizeTasks(tasks: readonly string[], options: TokenizeOptions): TokenizedBatch;
  /** The largest id it can produce: the model's vocabulary must be larger. */
  readonly maxTokenId: number;
  /** Id used to pad ready-token rows (0 when absent). */
  readonly padTokenId?: number | null;
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A token given as a string or as `{content}` (AddedToken) in tokenizer_config.json. */
function tokenContent(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (isObject(v) && typeof v.content === 'string') return v.content;
  return undefined;
}

/** Distinct task strings cached per tokenizer; tasks repeat across a dataset, so this stays small. */
const ENCODE_CACHE_LIMIT = 4096;

export class VlmTokenizer implements TaskTokenizer {
  /** Where the tokenizer was read from ('<memory>' when built from objects). */
  readonly source: string;
  /** The pad token's id (tokenizer_config.json `pad_token`, else tokenizer.json `padding.pad_id`); null without one. */
  readonly padTokenId: number | null;
  private readonly tokenizer: Tokenizer;
  private readonly tokenizerJson: Json;
  private readonly tokenizerConfig: Json;
  private readonly cache = new Map<string, number[]>();

  constructor(tokenizerJson: Json, tokenizerConfig: Json = {}, source = '<memory>') {
    if (!isObject(tokenizerJson) || !isObject(tokenizerJson.model)) {
      throw new SmolVLAError('ERR_SMOLVLA_IO', `tokenizer ${source}: expected a tokenizer.json object with a 'model' entry`);
    }
    this.source = source;
    this.tokenizerJson = tokenizerJson;
    this.tokenizerConfig = tokenizerConfig;
    try {
      this.tokenizer = new Tokenizer(tokenizerJson, tokenizerConfig);
    } catch (err) {
      throw new SmolVLAError('ERR_SMOLVLA_IO', `tokenizer ${source}: cannot be built: ${(err as Error).message}`, { cause: err });
    }
    this.padTokenId = this.resolvePadId();
  }

  /** Reads `file` (a tokenizer.json) and the tokenizer_config.json beside it, when there is one. */
  static async fromFile(file: string): Promise<VlmTokenizer> {
    const parse = async (f: string): Promise<Json> => {
      const value = await readJsonFile(f);
      if (!isObject(value)) throw new SmolVLAError('ERR_SMOLVLA_IO', `${f}: expected a JSON object`);
      return value;
    };
    const configFile = path.join(path.dirname(file), 'tokenizer_config.json');
    const config = fs.existsSync(configFile) ? await parse(configFile) : {};
    return new VlmTokenizer(await parse(file), config, file);
  }

  private resolvePadId(): number | null {
    const pad = tokenContent(this.tokenizerConfig.pad_token);
    if (pad !== undefined) {
      const id = this.tokenizer.token_to_id(pad);
      if (id === undefined) throw new SmolVLAError('ERR_SMOLVLA_IO', `tokenizer ${this.source}: pad_token '${pad}' is not in the vocabulary`);
      return id;
    }
    const padding = this.tokenizerJson.padding;
    if (isObject(padding) && typeof padding.pad_id === 'number') return padding.pad_id;
    return null;
  }

  /** The id of a token string (special tokens included), or undefined. */
  tokenId(token: string): number | undefined {
    return this.tokenizer.token_to_id(token);
  }

  /** The largest id the tokenizer can produce (the model's vocabulary must be larger). */
  get maxTokenId(): number {
    let max = -1;
    for (const id of this.tokenizer.get_vocab(true).values()) if (id > max) max = id;
    return max;
  }

  /** Ids of `text` as it is (no newline added), with the post-processor's special tokens. */
  encode(text: string): number[] {
    let ids = this.cache.get(text);
    if (!ids) {
      ids = this.tokenizer.encode(text).ids;
      if (this.cache.size >= ENCODE_CACHE_LIMIT) this.cache.clear();
      this.cache.set(text, ids);
    }
    return ids;
  }

  decode(ids: readonly number[]): string {
    return this.tokenizer.decode([...ids]);
  }

  /**
   * LeRobot's prepare_language: each task gets a trailing newline when it lacks one, is tokenised,
   * truncated to maxLength and right-padded with the pad token (mask 0).
   */
  tokenizeTasks(tasks: readonly string[], options: TokenizeOptions): TokenizedBatch {
    if (!Number.isInteger(options.maxLength) || options.maxLength < 1) {
      throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `tokenizer_max_length: expected a positive integer, got ${String(options.maxLength)}`);
    }
    // transformers refuses to pad without a pad token even when no row needs padding; so do we.
    if (this.padTokenId === null) {
      throw new SmolVLAError('ERR_SMOLVLA_IO',
        `tokenizer ${this.source} has no pad token: set 'pad_token' in its tokenizer_config.json ` +
          `(SmolVLM2 uses "<|im_end|>") so task tokens can be padded as LeRobot pads them`,
      );
    }
    const rows = tasks.map((task, i) => {
      if (typeof task !== 'string') throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `task[${i}]: expected a string, got ${typeof task}`);
      return this.encode(task.endsWith('\n') ? task : `${task}\n`).slice(0, options.maxLength);
    });
    const length = options.padTo === 'max_length' ? options.maxLength : Math.max(0, ...rows.map((r) => r.length));
    const ids = new Int32Array(rows.length * length).fill(this.padTokenId);
    const mask = new Uint8Array(rows.length * length);
    rows.forEach((row, b) => {
      ids.set(row, b * length);
      mask.fill(1, b * length, b * length + row.length);
    });
    return { batchSize: rows.length, length, ids, mask };
  }

  /** Image start/end ids for add_image_special_tokens, as LeRobot takes them from SmolVLM's tokenizer. */
  imageSpecialTokens(): Required<TokenIds> {
    const fake = this.tokenId(FAKE_IMAGE_TOKEN);
    const global = this.tokenId(GLOBAL_IMAGE_TOKEN);
    const absent = [fake === undefined ? FAKE_IMAGE_TOKEN : null, global === undefined ? GLOBAL_IMAGE_TOKEN : null].filter(Boolean);
    if (fake === undefined || global === undefined) {
      throw new SmolVLAError('ERR_SMOLVLA_IO', `add_image_special_tokens: tokenizer ${this.source} lacks ${absent.join(' and ')} (SmolVLM's image tokens)`);
    }
    return { imageStartTokens: [fake, global], imageEndTokens: [fake] };
  }

  /** Writes tokenizer.json (and tokenizer_config.json) into `dir`, so a saved checkpoint carries its tokenizer. */
  async save(dir: string): Promise<void> {
    await fs.promises.mkdir(dir, { recursive: true });
    await fs.promises.writeFile(path.join(dir, 'tokenizer.json'), `${JSON.stringify(this.tokenizerJson)}\n`);
    if (Object.keys(this.tokenizerConfig).length > 0) {
      await fs.promises.writeFile(path.join(dir, 'tokenizer_config.json'), `${JSON.stringify(this.tokenizerConfig, null, 2)}\n`);
    }
  }
}

export interface TokenizerSearch {
  /** A checkpoint folder: its tokenizer.json comes first. */
  checkpointDir?: string;
  /** An explicit tokenizer.json, or a folder holding one (must exist). */
  path?: string;
  /** The config's vlm_model_name: a local folder of that name, then the Hugging Face cache. */
  vlmModelName?: string;
  /** Where HF_HUB_CACHE / HF_HOME / XDG_CACHE_HOME are read (default process.env). */
  env?: Record<string, string | undefined>;
  /** Home folder for ~/.cache (default os.homedir()). */
  homeDir?: string;
}

/** The Hugging Face hub cache folders, in the order huggingface_hub resolves them. */
export function hubCacheDirs(env: Record<string, string | undefined> = process.env, homeDir = os.homedir()): string[] {
  const dirs: string[] = [];
  if (env.HF_HUB_CACHE) dirs.push(env.HF_HUB_CACHE);
  if (env.HUGGINGFACE_HUB_CACHE) dirs.push(env.HUGGINGFACE_HUB_CACHE);
  if (env.HF_HOME) dirs.push(path.join(env.HF_HOME, 'hub'));
  if (env.XDG_CACHE_HOME) dirs.push(path.join(env.XDG_CACHE_HOME, 'huggingface', 'hub'));
  dirs.push(path.join(homeDir, '.cache', 'huggingface', 'hub'));
  return [...new Set(dirs)];
}

/** tokenizer.json of a cached hub model: the snapshot refs/main names, else the newest snapshot that has one. */
function cachedTokenizer(cacheDir: string, repoId: string): string | null {
  const repo = path.join(cacheDir, `models--${repoId.split('/').join('--')}`);
  const snapshots = path.join(repo, 'snapshots');
  if (!fs.existsSync(snapshots)) return null;
  const ref = path.join(repo, 'refs', 'main');
  if (fs.existsSync(ref)) {
    const file = path.join(snapshots, fs.readFileSync(ref, 'utf8').trim(), 'tokenizer.json');
    if (fs.existsSync(file)) return file;
  }
  const found = fs
    .readdirSync(snapshots)
    .map((s) => path.join(snapshots, s, 'tokenizer.json'))
    .filter((f) => fs.existsSync(f))
    .sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs);
  return found[0] ?? null;
}

/**
 * Finds and reads the VLM's tokenizer: the checkpoint folder's tokenizer.json, then the
 * explicit path, then a local folder named vlm_model_name, then the Hugging Face cache for it.
 * A string is an explicit path. Throws an Error listing where it looked and where to put the file.
 */
export async function loadTokenizer(source: TokenizerSearch | string): Promise<VlmTokenizer> {
  const s: TokenizerSearch = typeof source === 'string' ? { path: source } : source;
  const looked: string[] = [];
  const tryFile = (file: string): string | null => {
    looked.push(file);
    return fs.existsSync(file) && fs.statSync(file).isFile() ? file : null;
  };
  let found: string | null = null;
  if (s.path !== undefined && !fs.existsSync(s.path)) {
    throw new SmolVLAError('ERR_SMOLVLA_IO', `tokenizer: the path ${s.path} does not exist (expected a tokenizer.json or a folder holding one)`);
  }
  if (s.checkpointDir) found = tryFile(path.join(s.checkpointDir, 'tokenizer.json'));
  if (!found && s.path !== undefined) {
    found = tryFile(fs.statSync(s.path).isDirectory() ? path.join(s.path, 'tokenizer.json') : s.path);
  }
  if (!found && s.vlmModelName) {
    if (fs.existsSync(s.vlmModelName) && fs.statSync(s.vlmModelName).isDirectory()) {
      found = tryFile(path.join(s.vlmModelName, 'tokenizer.json'));
    }
    for (const dir of hubCacheDirs(s.env, s.homeDir)) {
      if (found) break;
      looked.push(path.join(dir, `models--${s.vlmModelName.split('/').join('--')}`, 'snapshots', '*', 'tokenizer.json'));
      found = cachedTokenizer(dir, s.vlmModelName);
    }
  }
  if (found) return VlmTokenizer.fromFile(found);
  const name = s.vlmModelName ?? '<vlm_model_name>';
  throw new SmolVLAError('ERR_SMOLVLA_IO',
    `tokenizer: no tokenizer.json found for '${name}'. Looked in:\n  ${looked.join('\n  ') || '(nowhere: nothing to search)'}\n` +
      `Put the VLM's tokenizer.json (and tokenizer_config.json) into the checkpoint folder` +
      (s.checkpointDir ? ` ${s.checkpointDir}` : '') +
      `, pass its path (tokenizer option), or fetch it into the Hugging Face cache once: ` +
      `huggingface-cli download ${name} tokenizer.json tokenizer_config.json`,
  );
}
