/**
 * A LeRobot dataset folder (v2.x or v3.0) as a Dataset: the low-dimensional columns are read once at
 * open; camera frames are decoded per episode with ffmpeg on first use and kept in a byte-bounded LRU.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';

import { actionChunk, checkPositiveInteger, checkSampleIndex } from '../chunk';
import { FrameCache } from '../frame-cache';
import { cellNumber, cellNumbers, readParquet } from '../parquet';
import { computeStats } from '../stats';
import { ACTION_KEY, STATE_KEY, type Dataset, type DatasetSample, type EpisodeInfo, type FeatureSpec, type SampleImage, type Stats } from '../types';
import { decodeImages, decodeVideo, frameAt, frameToChw, probeStartTime, type DecodedFrames } from '../video';
import { readInfo, type DatasetInfo } from './info';
import type { DatasetLayout, EpisodeSource } from './layout';
import { checkRepoId, resolveDatasetRoot } from './location';
import { readV2Layout } from './v2';
import { readV3Layout } from './v3';
import { SmolVLAError } from '../../errors';

export interface OpenOptions {
  repoId: string;
  /** Dataset folder; default `$HF_LEROBOT_HOME/<repoId>`, then `~/.cache/huggingface/lerobot/<repoId>`. */
  root?: string;
  /** Actions per sample (the policy's chunk_size). */
  chunkSize: number;
  /** Largest allowed gap between a frame's timestamp and the decoded video frame; default 1e-4 s, LeRobot's tolerance_s. */
  toleranceS?: number;
  /** Byte budget of decoded episodes kept in memory; default 512 MiB. */
  frameCacheBytes?: number;
}

/** LeRobotDataset's default tolerance_s: a decoded frame must lie this close to the queried time. */
export const DEFAULT_TOLERANCE_S = 1e-4;

const INDEX_COLUMNS = ['timestamp', 'frame_index', 'episode_index', 'index', 'task_index'] as const;

/** Where an episode's rows ended up once all data files are read. */
interface EpisodeRows {
  source: EpisodeSource;
  /** Positions [start, end) in this dataset. */
  start: number;
  end: number;
  /** Row of the episode's first frame inside its data file (for image columns). */
  fileRow: number;
  minTimestamp: number;
  maxTimestamp: number;
}

export async function openLeRobotDataset(opts: OpenOptions): Promise<Dataset> {
  const repoId = checkRepoId(opts.repoId);
  const chunkSize = checkPositiveInteger('chunkSize', opts.chunkSize);
  for (const name of ['toleranceS', 'frameCacheBytes'] as const) {
    const value = opts[name];
    if (value !== undefined && !(value > 0)) throw new SmolVLAError('ERR_SMOLVLA_IO', `${name} must be a positive number, got ${value}`);
  }
  const root = resolveDatasetRoot(repoId, opts.root);
  const info = await readInfo(root);
  const layout = info.layout === 'v2' ? await readV2Layout(root, info) : await readV3Layout(root, info);
  return LeRobotDataset.load(repoId, root, info, layout, chunkSize, opts);
}

function vectorWidth(features: Record<string, FeatureSpec>, key: string, root: string): number {
  const spec = features[key];
  if (!spec) throw new SmolVLAError('ERR_SMOLVLA_IO', `dataset at ${root}: meta/info.json has no '${key}' feature, which training needs`);
  return spec.shape.reduce((a, b) => a * b, 1);
}

class LeRobotDataset implements Dataset {
  readonly length: number;
  readonly cameraKeys: string[];
  readonly episodes: EpisodeInfo[];
  private readonly cache: FrameCache;
  private readonly tolerance: number;
  /** Container start time per shared video file, probed once. */
  private readonly startTimes = new Map<string, Promise<number>>();
  private closed = false;

  private constructor(
    readonly repoId: string,
    private readonly root: string,
    private readonly info: DatasetInfo,
    private readonly chunkSize: number,
    readonly stateDim: number,
    readonly actionDim: number,
    readonly stats: Record<string, Stats>,
    private readonly tasks: Map<number, string>,
    private readonly rows: EpisodeRows[],
    private readonly columns: {
      state: Float32Array;
      action: Float32Array;
      timestamp: Float64Array;
      frameIndex: Float64Array;
      episodeIndex: Float64Array;
      index: Float64Array;
      taskIndex: Float64Array;
      slot: Int32Array;
    },
    opts: OpenOptions,
  ) {
    this.length = columns.slot.length;
    this.cameraKeys = Object.entries(info.features)
      .filter(([, f]) => f.dtype === 'video' || f.dtype === 'image')
      .map(([k]) => k);
    this.episodes = rows.map((r) => ({ index: r.source.index, length: r.source.length, tasks: [...r.source.tasks] }));
    this.tolerance = opts.toleranceS ?? DEFAULT_TOLERANCE_S;
    this.cache = new FrameCache(opts.frameCacheBytes ?? 512 * 1024 * 1024);
  }

  get fps(): number {
    return this.info.fps;
  }

  get features(): Record<string, FeatureSpec> {
    return this.info.features;
  }

  /** Reads every data file once and checks it against the episode index. */
  static async load(
    repoId: string,
    root: string,
    info: DatasetInfo,
    layout: DatasetLayout,
    chunkSize: number,
    opts: OpenOptions,
  ): Promise<LeRobotDataset> {
    const stateDim = vectorWidth(info.features, STATE_KEY, root);
    const actionDim = vectorWidth(info.features, ACTION_KEY, root);
    for (const ep of layout.episodes) {
      for (const [key, video] of Object.entries(ep.videos)) {
        if (!existsSync(video.file)) {
          throw new SmolVLAError('ERR_SMOLVLA_IO', `video file of camera '${key}', episode ${ep.index} is missing: ${video.file}`);
        }
      }
    }
    const total = layout.episodes.reduce((n, ep) => n + ep.length, 0);
    if (total !== info.totalFrames || layout.episodes.length !== info.totalEpisodes) {
      throw new SmolVLAError('ERR_SMOLVLA_IO',
        `dataset at ${root}: meta/info.json counts ${info.totalEpisodes} episodes and ${info.totalFrames} frames, ` +
          `the episode index lists ${layout.episodes.length} episodes and ${total} frames`,
      );
    }
    const cols = {
      state: new Float32Array(total * stateDim),
      action: new Float32Array(total * actionDim),
      timestamp: new Float64Array(total),
      frameIndex: new Float64Array(total),
      episodeIndex: new Float64Array(total),
      index: new Float64Array(total),
      taskIndex: new Float64Array(total),
      slot: new Int32Array(total),
    };
    const slotOf = new Map(layout.episodes.map((ep, i) => [ep.index, i]));
    const rows: Array<EpisodeRows | undefined> = layout.episodes.map(() => undefined);
    const files = [...new Set(layout.episodes.map((ep) => ep.dataFile))];
    let pos = 0;
    for (const file of files) {
      const table = await readParquet(file, { columns: [STATE_KEY, ACTION_KEY, ...INDEX_COLUMNS] });
      let previous = -1;
      table.rows.forEach((row, r) => {
        const where = `${file} row ${r}`;
        const episodeIndex = cellNumber(row.episode_index, `${where} 'episode_index'`);
        const slot = slotOf.get(episodeIndex);
        if (slot === undefined) throw new SmolVLAError('ERR_SMOLVLA_IO', `${where}: episode ${episodeIndex} is not in the dataset's episode index`);
        const ep = layout.episodes[slot] as EpisodeSource;
        if (slot !== previous) {
          if (ep.dataFile !== file) throw new SmolVLAError('ERR_SMOLVLA_IO', `${where}: episode ${episodeIndex} belongs in ${ep.dataFile} per the episode index`);
          if (rows[slot]) throw new SmolVLAError('ERR_SMOLVLA_IO', `${where}: rows of episode ${episodeIndex} are not contiguous`);
          rows[slot] = { source: ep, start: pos, end: pos, fileRow: r, minTimestamp: Infinity, maxTimestamp: -Infinity };
          previous = slot;
        }
        if (pos >= total) throw new SmolVLAError('ERR_SMOLVLA_IO', `${file}: more rows than the ${total} frames the episode index lists`);
        const state = cellNumbers(row[STATE_KEY], `${where} '${STATE_KEY}'`);
        const action = cellNumbers(row[ACTION_KEY], `${where} '${ACTION_KEY}'`);
        if (state.length !== stateDim) throw new SmolVLAError('ERR_SMOLVLA_IO', `${where}: '${STATE_KEY}' has ${state.length} values, info.json says ${stateDim}`);
        if (action.length !== actionDim) throw new SmolVLAError('ERR_SMOLVLA_IO', `${where}: '${ACTION_KEY}' has ${action.length} values, info.json says ${actionDim}`);
        cols.state.set(state, pos * stateDim);
        cols.action.set(action, pos * actionDim);
        const timestamp = cellNumber(row.timestamp, `${where} 'timestamp'`);
        cols.timestamp[pos] = timestamp;
        cols.frameIndex[pos] = cellNumber(row.frame_index, `${where} 'frame_index'`);
        cols.episodeIndex[pos] = episodeIndex;
        cols.index[pos] = cellNumber(row.index, `${where} 'index'`);
        const taskIndex = cellNumber(row.task_index, `${where} 'task_index'`);
        if (!layout.tasks.has(taskIndex)) throw new SmolVLAError('ERR_SMOLVLA_IO', `${where}: task_index ${taskIndex} is not in the task list`);
        cols.taskIndex[pos] = taskIndex;
        cols.slot[pos] = slot;
        const span = rows[slot] as EpisodeRows;
        span.end = ++pos;
        span.minTimestamp = Math.min(span.minTimestamp, timestamp);
        span.maxTimestamp = Math.max(span.maxTimestamp, timestamp);
      });
    }
    const spans = rows.map((span, slot) => {
      const ep = layout.episodes[slot] as EpisodeSource;
      const found = span ? span.end - span.start : 0;
      if (!span || found !== ep.length) {
        throw new SmolVLAError('ERR_SMOLVLA_IO', `episode ${ep.index}: the episode index lists ${ep.length} frames but ${ep.dataFile} holds ${found}`);
      }
      return span;
    });
    const stats: Record<string, Stats> = { ...layout.stats };
    // Statistics the metadata lacks are computed from the columns just read.
    stats[STATE_KEY] ??= computeStats(cols.state, total, stateDim);
    stats[ACTION_KEY] ??= computeStats(cols.action, total, actionDim);
    return new LeRobotDataset(repoId, root, info, chunkSize, stateDim, actionDim, stats, layout.tasks, spans, cols, opts);
  }

  async get(index: number): Promise<DatasetSample> {
    if (this.closed) throw new SmolVLAError('ERR_SMOLVLA_IO', `dataset '${this.repoId}' is closed`);
    const i = checkSampleIndex(index, this.length, this.repoId);
    const c = this.columns;
    const span = this.rows[c.slot[i] as number] as EpisodeRows;
    const decoded = await Promise.all(this.cameraKeys.map((key) => this.image(key, span, i)));
    return {
      // Keys in cameraKeys order, whatever order the decodes finished in.
      images: Object.fromEntries(this.cameraKeys.map((key, k) => [key, decoded[k] as SampleImage])),
      state: c.state.slice(i * this.stateDim, (i + 1) * this.stateDim),
      ...actionChunk(c.action, this.actionDim, i, span.end, this.chunkSize),
      task: this.tasks.get(c.taskIndex[i] as number) as string,
      episodeIndex: c.episodeIndex[i] as number,
      frameIndex: c.frameIndex[i] as number,
      index: c.index[i] as number,
      timestamp: c.timestamp[i] as number,
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.cache.clear();
  }

  private async image(key: string, span: EpisodeRows, i: number): Promise<SampleImage> {
    const ep = span.source;
    const video = ep.videos[key];
    if (video) {
      // A file of its own is decoded whole; in a shared file, the episode's time range with a
      // tolerance of margin on either side. Either way once per episode.
      const start = video.fromTimestamp + span.minTimestamp - this.tolerance;
      const end = video.fromTimestamp + span.maxTimestamp + this.tolerance;
      const frames = await this.cache.get(`video|${video.file}|${video.shared ? `${start}|${end}` : 'all'}`, async () =>
        decodeVideo(video.file, video.shared ? { start, end, startTime: await this.startTime(video.file) } : undefined),
      );
      const t = video.fromTimestamp + (this.columns.timestamp[i] as number);
      const what = `camera '${key}', episode ${ep.index}, frame ${this.columns.frameIndex[i]} in ${video.file}`;
      return frameToChw(frames, frameAt(frames, t, this.tolerance, what));
    }
    const frames = await this.cache.get(`image|${ep.dataFile}|${key}|${span.fileRow}`, () => this.decodeImageColumn(key, span));
    return frameToChw(frames, i - span.start);
  }

  private startTime(file: string): Promise<number> {
    let pending = this.startTimes.get(file);
    if (!pending) {
      pending = probeStartTime(file);
      pending.catch(() => this.startTimes.delete(file));
      this.startTimes.set(file, pending);
    }
    return pending;
  }

  /** Image features stored in the Parquet rows as `{bytes, path}` structs (PNG/JPEG). */
  private async decodeImageColumn(key: string, span: EpisodeRows): Promise<DecodedFrames> {
    const file = span.source.dataFile;
    const { rows } = await readParquet(file, { columns: [key], rowStart: span.fileRow, rowEnd: span.fileRow + span.source.length });
    const encoded = await Promise.all(
      rows.map(async (row, r) => {
        const cell = row[key] as { bytes?: unknown; path?: unknown } | null | undefined;
        // ArrayBuffer.isView, not instanceof: the bytes may come from hyparquet's realm.
        const bytes = cell?.bytes;
        if (ArrayBuffer.isView(bytes) && bytes.byteLength > 0) return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        if (typeof cell?.path === 'string' && cell.path.length > 0) {
          return new Uint8Array(await readFile(path.isAbsolute(cell.path) ? cell.path : path.join(this.root, cell.path)));
        }
        throw new SmolVLAError('ERR_SMOLVLA_IO', `${file} row ${span.fileRow + r}: image '${key}' has neither bytes nor a path`);
      }),
    );
    return decodeImages(encoded, `decoding '${key}' of episode ${span.source.index} from ${file}`);
  }
}
