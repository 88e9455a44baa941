/**
 * Writes a LeRobot dataset folder (v2.1 or v3.0 layout, with metadata and statistics) from in-memory
 * episodes; videos are encoded with ffmpeg. Used by tests and to export synthetic data.
 */
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';

import { checkPositiveInteger } from './chunk';
import { encodePng, encodeVideo, type EncodedVideo } from './encode';
import { formatTemplate } from './lerobot/info';
import { writeParquet, type ParquetColumn, type ParquetType } from './parquet';
import { aggregateStats, computeStats, imageStats, statsToJson } from './stats';
import { ACTION_KEY, STATE_KEY, type FeatureSpec, type Stats } from './types';
import { SmolVLAError } from '../errors';

export interface WriteFrame {
  /** camera key -> HWC rgb24 bytes of imageSize. */
  images: Record<string, Uint8Array>;
  state: Float32Array;
  action: Float32Array;
}

export interface WriteEpisode {
  task: string;
  frames: WriteFrame[];
}

export interface WriteOptions {
  version: 'v2.1' | 'v3.0';
  fps: number;
  episodes: WriteEpisode[];
  /** [width, height] of every camera image. */
  imageSize: [number, number];
  cameraKeys: string[];
  /** 'video' (default): MP4 files; 'image': PNG bytes inside the Parquet rows (feature dtype "image"). */
  imageStorage?: 'video' | 'image';
  /** v3.0 only: episodes per data/video file (default: all episodes in one file). */
  episodesPerFile?: number;
  robotType?: string | null;
}

const CHUNKS_SIZE = 1000;
const V2_DATA_PATH = 'data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet';
const V2_VIDEO_PATH = 'videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4';
const V3_DATA_PATH = 'data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet';
const V3_VIDEO_PATH = 'videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4';
const V3_EPISODES_PATH = 'meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet';
const INT_COLUMNS = ['frame_index', 'episode_index', 'index', 'task_index'] as const;

/** An episode with its place in the dataset. */
interface Placed {
  episode: WriteEpisode;
  index: number;
  /** Global index of its first frame. */
  from: number;
  taskIndex: number;
  stats: Record<string, Stats>;
}

export async function writeLeRobotDataset(dir: string, opts: WriteOptions): Promise<void> {
  const { stateDim, actionDim } = validate(opts);
  const [width, height] = opts.imageSize;
  const storage = opts.imageStorage ?? 'video';
  const tasks = [...new Set(opts.episodes.map((e) => e.task))];
  let from = 0;
  const placed: Placed[] = opts.episodes.map((episode, index) => {
    const p = { episode, index, from, taskIndex: tasks.indexOf(episode.task), stats: {} };
    from += episode.frames.length;
    return p;
  });
  for (const p of placed) p.stats = episodeStats(p, opts, stateDim, actionDim);

  const features: Record<string, FeatureSpec> = {};
  for (const key of opts.cameraKeys) {
    features[key] = { dtype: storage, shape: [height, width, 3], names: ['height', 'width', 'channels'] };
  }
  features[STATE_KEY] = { dtype: 'float32', shape: [stateDim], names: null };
  features[ACTION_KEY] = { dtype: 'float32', shape: [actionDim], names: null };
  features.timestamp = { dtype: 'float32', shape: [1], names: null };
  for (const key of INT_COLUMNS) features[key] = { dtype: 'int64', shape: [1], names: null };

  const existing = await readdir(dir).catch(() => []);
  if (existing.length > 0) throw new SmolVLAError('ERR_SMOLVLA_IO', `writeLeRobotDataset: ${dir} already exists and is not empty`);
  await mkdir(path.join(dir, 'meta'), { recursive: true });
  const write = opts.version === 'v2.1' ? writeV21 : writeV30;
  const encoded = await write(dir, opts, placed, tasks);
  const videoKeys = videoKeysOf(opts);
  for (const key of videoKeys) (features[key] as FeatureSpec).info = videoInfo(encoded as EncodedVideo, width, height, opts.fps);
  // LeRobot's v3.0 conversion records the rate on every non-video feature too.
  if (opts.version === 'v3.0') for (const f of Object.values(features)) if (f.dtype !== 'video') f.fps = opts.fps;
  const info: Record<string, unknown> = {
    codebase_version: opts.version,
    robot_type: opts.robotType ?? null,
    total_episodes: placed.length,
    total_frames: from,
    total_tasks: tasks.length,
    ...(opts.version === 'v2.1'
      ? { total_videos: videoKeys.length * placed.length, total_chunks: Math.ceil(placed.length / CHUNKS_SIZE), chunks_size: CHUNKS_SIZE }
      : { chunks_size: CHUNKS_SIZE, data_files_size_in_mb: 100, video_files_size_in_mb: 500 }),
    fps: opts.fps,
    splits: { train: `0:${placed.length}` },
    data_path: opts.version === 'v2.1' ? V2_DATA_PATH : V3_DATA_PATH,
    video_path: videoKeys.length === 0 ? null : opts.version === 'v2.1' ? V2_VIDEO_PATH : V3_VIDEO_PATH,
    features,
  };
  await writeJson(path.join(dir, 'meta', 'info.json'), info);
}

function validate(opts: WriteOptions): { stateDim: number; actionDim: number } {
  if (opts.version !== 'v2.1' && opts.version !== 'v3.0') {
    throw new SmolVLAError('ERR_SMOLVLA_IO', `version must be 'v2.1' or 'v3.0', got ${JSON.stringify(opts.version)}`);
  }
  if (!(opts.fps > 0)) throw new SmolVLAError('ERR_SMOLVLA_IO', `fps must be positive, got ${opts.fps}`);
  const [width, height] = opts.imageSize;
  checkPositiveInteger('imageSize[0] (width)', width);
  checkPositiveInteger('imageSize[1] (height)', height);
  if (opts.episodesPerFile !== undefined) checkPositiveInteger('episodesPerFile', opts.episodesPerFile);
  if (opts.imageStorage !== undefined && opts.imageStorage !== 'video' && opts.imageStorage !== 'image') {
    throw new SmolVLAError('ERR_SMOLVLA_IO', `imageStorage must be 'video' or 'image', got ${JSON.stringify(opts.imageStorage)}`);
  }
  if (new Set(opts.cameraKeys).size !== opts.cameraKeys.length || opts.cameraKeys.some((k) => typeof k !== 'string' || k.includes('/'))) {
    throw new SmolVLAError('ERR_SMOLVLA_IO', `cameraKeys must be distinct feature names without '/', got ${JSON.stringify(opts.cameraKeys)}`);
  }
  const first = opts.episodes[0]?.frames[0];
  if (!first) throw new SmolVLAError('ERR_SMOLVLA_IO', 'episodes must hold at least one episode with at least one frame');
  const stateDim = first.state.length;
  const actionDim = first.action.length;
  opts.episodes.forEach((ep, e) => {
    if (typeof ep.task !== 'string') throw new SmolVLAError('ERR_SMOLVLA_IO', `episodes[${e}].task must be a string`);
    if (ep.frames.length === 0) throw new SmolVLAError('ERR_SMOLVLA_IO', `episodes[${e}] has no frames`);
    ep.frames.forEach((f, k) => {
      const where = `episodes[${e}].frames[${k}]`;
      if (f.state.length !== stateDim) throw new SmolVLAError('ERR_SMOLVLA_IO', `${where}.state has ${f.state.length} values, the first frame has ${stateDim}`);
      if (f.action.length !== actionDim) throw new SmolVLAError('ERR_SMOLVLA_IO', `${where}.action has ${f.action.length} values, the first frame has ${actionDim}`);
      for (const key of opts.cameraKeys) {
        const img = f.images[key];
        if (!img || img.length !== width * height * 3) {
          throw new SmolVLAError('ERR_SMOLVLA_IO', `${where}.images['${key}'] must be ${width}x${height} HWC RGB (${width * height * 3} bytes), got ${img ? img.length : 'none'}`);
        }
      }
    });
  });
  return { stateDim, actionDim };
}

function episodeStats(p: Placed, opts: WriteOptions, stateDim: number, actionDim: number): Record<string, Stats> {
  const frames = p.episode.frames;
  const n = frames.length;
  const gather = (dim: number, pick: (f: WriteFrame) => Float32Array): Float32Array => {
    const out = new Float32Array(n * dim);
    frames.forEach((f, k) => out.set(pick(f), k * dim));
    return out;
  };
  const stats: Record<string, Stats> = {};
  const [width, height] = opts.imageSize;
  for (const key of opts.cameraKeys) {
    stats[key] = imageStats(n, width, height, (k) => {
      const hwc = frames[k]?.images[key] as Uint8Array;
      return (x, y, c) => (hwc[3 * (y * width + x) + c] as number) / 255;
    });
  }
  stats[STATE_KEY] = computeStats(gather(stateDim, (f) => f.state), n, stateDim);
  stats[ACTION_KEY] = computeStats(gather(actionDim, (f) => f.action), n, actionDim);
  const perFrame = (value: (k: number) => number): Stats => computeStats(Float64Array.from({ length: n }, (_, k) => value(k)), n, 1);
  stats.timestamp = perFrame((k) => timestampOf(k, opts.fps));
  stats.frame_index = perFrame((k) => k);
  stats.episode_index = perFrame(() => p.index);
  stats.index = perFrame((k) => p.from + k);
  stats.task_index = perFrame(() => p.taskIndex);
  return stats;
}

/** Frame k's timestamp as the float32 `timestamp` column stores it. */
const timestampOf = (k: number, fps: number): number => Math.fround(k / fps);

/** The frame rows of `group` (consecutive episodes) as Parquet columns. */
function dataColumns(group: Placed[], opts: WriteOptions): ParquetColumn[] {
  const [width, height] = opts.imageSize;
  const frames = group.flatMap((p) => p.episode.frames.map((f, k) => ({ p, f, k })));
  const columns: ParquetColumn[] = [];
  if (opts.imageStorage === 'image') {
    for (const key of opts.cameraKeys) {
      columns.push({
        name: key,
        type: { struct: [['bytes', 'BYTES'], ['path', 'STRING']] },
        data: frames.map(({ f, k }) => ({
          bytes: encodePng(f.images[key] as Uint8Array, width, height),
          path: `frame_${String(k).padStart(6, '0')}.png`,
        })),
      });
    }
  }
  columns.push(
    { name: STATE_KEY, type: { list: 'FLOAT' }, data: frames.map(({ f }) => f.state) },
    { name: ACTION_KEY, type: { list: 'FLOAT' }, data: frames.map(({ f }) => f.action) },
    { name: 'timestamp', type: 'FLOAT', data: frames.map(({ k }) => timestampOf(k, opts.fps)) },
    { name: 'frame_index', type: 'INT64', data: frames.map(({ k }) => k) },
    { name: 'episode_index', type: 'INT64', data: frames.map(({ p }) => p.index) },
    { name: 'index', type: 'INT64', data: frames.map(({ p, k }) => p.from + k) },
    { name: 'task_index', type: 'INT64', data: frames.map(({ p }) => p.taskIndex) },
  );
  return columns;
}

const videoKeysOf = (opts: WriteOptions): string[] => ((opts.imageStorage ?? 'video') === 'video' ? opts.cameraKeys : []);

function cameraFrames(group: Placed[], key: string): Uint8Array[] {
  return group.flatMap((p) => p.episode.frames.map((f) => f.images[key] as Uint8Array));
}

/** v2.1: one Parquet file per episode, one MP4 per episode and camera, JSON-lines metadata. */
async function writeV21(dir: string, opts: WriteOptions, placed: Placed[], tasks: string[]): Promise<EncodedVideo | undefined> {
  const [width, height] = opts.imageSize;
  const encodes: Array<Promise<EncodedVideo>> = [];
  for (const p of placed) {
    const chunk = Math.floor(p.index / CHUNKS_SIZE);
    await writeParquet(path.join(dir, formatTemplate(V2_DATA_PATH, { episode_chunk: chunk, episode_index: p.index })), dataColumns([p], opts));
    for (const key of videoKeysOf(opts)) {
      const file = path.join(dir, formatTemplate(V2_VIDEO_PATH, { episode_chunk: chunk, video_key: key, episode_index: p.index }));
      encodes.push(encodeVideo(file, cameraFrames([p], key), width, height, opts.fps));
    }
  }
  const meta = path.join(dir, 'meta');
  await writeJsonLines(
    path.join(meta, 'episodes.jsonl'),
    placed.map((p) => ({ episode_index: p.index, tasks: [p.episode.task], length: p.episode.frames.length })),
  );
  await writeJsonLines(path.join(meta, 'tasks.jsonl'), tasks.map((task, i) => ({ task_index: i, task })));
  await writeJsonLines(
    path.join(meta, 'episodes_stats.jsonl'),
    placed.map((p) => ({ episode_index: p.index, stats: statsToJson(p.stats, opts.cameraKeys) })),
  );
  return (await Promise.all(encodes))[0];
}

/** v3.0: episodes packed into data/video files, a Parquet episode index, tasks.parquet, stats.json. */
async function writeV30(dir: string, opts: WriteOptions, placed: Placed[], tasks: string[]): Promise<EncodedVideo | undefined> {
  const [width, height] = opts.imageSize;
  const perFile = opts.episodesPerFile ?? placed.length;
  const encodes: Array<Promise<EncodedVideo>> = [];
  const rows: Array<Record<string, unknown>> = [];
  for (let fileNo = 0; fileNo * perFile < placed.length; fileNo++) {
    const group = placed.slice(fileNo * perFile, (fileNo + 1) * perFile);
    const at = { chunk_index: Math.floor(fileNo / CHUNKS_SIZE), file_index: fileNo % CHUNKS_SIZE };
    await writeParquet(path.join(dir, formatTemplate(V3_DATA_PATH, at)), dataColumns(group, opts));
    for (const key of videoKeysOf(opts)) {
      const file = path.join(dir, formatTemplate(V3_VIDEO_PATH, { ...at, video_key: key }));
      encodes.push(encodeVideo(file, cameraFrames(group, key), width, height, opts.fps));
    }
    let framesBefore = 0;
    for (const p of group) {
      const length = p.episode.frames.length;
      const row: Record<string, unknown> = {
        episode_index: p.index,
        tasks: [p.episode.task],
        length,
        'data/chunk_index': at.chunk_index,
        'data/file_index': at.file_index,
        dataset_from_index: p.from,
        dataset_to_index: p.from + length,
      };
      for (const key of videoKeysOf(opts)) {
        row[`videos/${key}/chunk_index`] = at.chunk_index;
        row[`videos/${key}/file_index`] = at.file_index;
        row[`videos/${key}/from_timestamp`] = framesBefore / opts.fps;
        row[`videos/${key}/to_timestamp`] = (framesBefore + length) / opts.fps;
      }
      for (const [key, entry] of Object.entries(statsToJson(p.stats, opts.cameraKeys))) {
        for (const [name, value] of Object.entries(entry)) row[`stats/${key}/${name}`] = value;
      }
      row['meta/episodes/chunk_index'] = 0;
      row['meta/episodes/file_index'] = 0;
      rows.push(row);
      framesBefore += length;
    }
  }
  await writeParquet(path.join(dir, formatTemplate(V3_EPISODES_PATH, { chunk_index: 0, file_index: 0 })), episodeColumns(rows, opts.cameraKeys));
  await writeTasksParquet(path.join(dir, 'meta', 'tasks.parquet'), tasks);
  const stats = aggregateStats(placed.map((p) => p.stats), 'writer');
  await writeJson(path.join(dir, 'meta', 'stats.json'), statsToJson(stats, opts.cameraKeys));
  return (await Promise.all(encodes))[0];
}

function episodeColumnType(name: string, imageKeys: string[]): ParquetType {
  const stat = /^stats\/(.+)\/([^/]+)$/.exec(name);
  if (stat) {
    if (stat[2] === 'count') return { list: 'INT64' };
    return imageKeys.includes(stat[1] as string) ? { list: { list: { list: 'DOUBLE' } } } : { list: 'DOUBLE' };
  }
  if (name === 'tasks') return { list: 'STRING' };
  return name.endsWith('_timestamp') ? 'DOUBLE' : 'INT64';
}

function episodeColumns(rows: Array<Record<string, unknown>>, imageKeys: string[]): ParquetColumn[] {
  const names = Object.keys(rows[0] ?? {});
  return names.map((name) => ({ name, type: episodeColumnType(name, imageKeys), data: rows.map((r) => r[name]) }));
}

/**
 * LeRobot keeps tasks in a pandas DataFrame indexed by the task text and saves it with
 * `to_parquet`, so the text is the `__index_level_0__` column described by the `pandas` metadata.
 */
async function writeTasksParquet(file: string, tasks: string[]): Promise<void> {
  const pandas = {
    index_columns: ['__index_level_0__'],
    column_indexes: [{ name: null, field_name: null, pandas_type: 'unicode', numpy_type: 'object', metadata: { encoding: 'UTF-8' } }],
    columns: [
      { name: 'task_index', field_name: 'task_index', pandas_type: 'int64', numpy_type: 'int64', metadata: null },
      { name: null, field_name: '__index_level_0__', pandas_type: 'unicode', numpy_type: 'object', metadata: null },
    ],
    creator: { library: 'pyarrow', version: '14.0.0' },
    pandas_version: '2.1.0',
  };
  await writeParquet(
    file,
    [
      { name: 'task_index', type: 'INT64', data: tasks.map((_, i) => i) },
      { name: '__index_level_0__', type: 'STRING', data: tasks },
    ],
    { pandas: JSON.stringify(pandas) },
  );
}

/** `features[camera].info` as LeRobot's get_video_info records it. */
function videoInfo(encoded: EncodedVideo, width: number, height: number, fps: number): Record<string, unknown> {
  return {
    'video.height': height,
    'video.width': width,
    'video.codec': encoded.codec,
    'video.pix_fmt': encoded.pixFmt,
    'video.is_depth_map': false,
    'video.fps': fps,
    'video.channels': 3,
    has_audio: false,
  };
}

async function writeJson(file: string, value: unknown): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, JSON.stringify(value, null, 4));
}

async function writeJsonLines(file: string, rows: unknown[]): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
}
