/**
 * LeRobot dataset folders made without any of this project's code, so the reader meets files it did
 * not write itself: Parquet by arrow-rs (the parquet-wasm package, fed Arrow tables built with
 * apache-arrow), videos and PNG frames by the ffmpeg command line, metadata as LeRobot writes it.
 *
 * What LeRobot writes, from huggingface/lerobot's source:
 *  - v2.1 (v0.3.2: lerobot_dataset.py, utils.py, video_utils.py): one Parquet file per episode from
 *    `datasets.Dataset.to_parquet` (one row group, the `huggingface` key holding the HF features),
 *    meta/episodes.jsonl, tasks.jsonl, episodes_stats.jsonl; one MP4 per episode and camera encoded
 *    with libsvtav1, yuv420p, g=2, crf=30.
 *  - v3.0 (main: dataset_writer.py, dataset_metadata.py, io_utils.py, configs/video.py): episodes
 *    appended to data/chunk-000/file-000.parquet by pyarrow's ParquetWriter (snappy, dictionary);
 *    meta/episodes/chunk-000/file-000.parquet from `pa.Table.from_pydict` (Python lists of floats become
 *    list<double>, stats flattened to `stats/<feature>/<stat>` columns, image stats (3, 1, 1) nested
 *    lists); meta/tasks.parquet from a pandas DataFrame indexed by the task text; meta/stats.json;
 *    each episode encoded alone (libsvtav1 as above plus preset 12 and fast-decode=0) and appended to
 *    the camera's MP4 with ffmpeg's concat demuxer, `from_timestamp` being the previous `to_timestamp`
 *    and `to_timestamp` adding the episode video's stream duration.
 * Column types are HF datasets': `Sequence(float32, length=6)` is a fixed-size list of float32,
 * `Value` scalars are float32 / int64, `Image()` a struct of binary `bytes` and string `path`. The
 * list element is named `element` as pyarrow >= 13 names it.
 *
 * Deliberate departure: arrow-rs cannot close a row group at each episode as LeRobot's writer does,
 * so the v3.0 data file gets 8-row groups that cut through episodes (the harder case for a reader).
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';

import * as arrow from 'apache-arrow';
import type * as ParquetWasm from 'parquet-wasm/esm/parquet_wasm';

import { loadEsm } from '../../lib/data/esm';

const run = promisify(execFile);

export const FPS = 30;
/**
 * Multiples of 3 frames at 30 fps: whole milliseconds. ffmpeg's concat demuxer (LeRobot's too) starts
 * the next file at the previous file's container duration, which MP4 stores rounded up to the
 * millisecond, while LeRobot's `from_timestamp` adds exact stream durations; a 14-frame episode would
 * put the next one 0.33 ms late, past LeRobot's own 1e-4 s tolerance.
 */
export const LENGTHS = [15, 9, 21];
export const TASKS = ['pick up the red block', 'stack the blue block on the red one'];
/** task_index of each episode. */
export const EPISODE_TASK = [0, 1, 0];
export const MOTORS = ['shoulder_pan.pos', 'shoulder_lift.pos', 'elbow_flex.pos', 'wrist_flex.pos', 'wrist_roll.pos', 'gripper.pos'];
/** libsvtav1, LeRobot's encoder, refuses frames under 64x64. */
export const VIDEO = { key: 'observation.images.front', width: 96, height: 64 };
export const IMAGE = { key: 'observation.images.wrist', width: 32, height: 24 };
const DIM = MOTORS.length;
/** Dataset index of episode e's first frame. */
const firstIndex = (e: number): number => LENGTHS.slice(0, e).reduce((a, b) => a + b, 0);
const V3_DATA_ROW_GROUP = 8;

export type Version = 'v2.1' | 'v3.0';

/** A value in [0, 1) fixed by the integers given (splitmix32-style mixing). */
function unit(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const p of parts) {
    h = Math.imul(h ^ (p + 0x7f4a7c15), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return (h >>> 0) / 2 ** 32;
}

const SCALES = [1e-3, 0.5, 1, 30, 180, 1e4];

/** float32 values spread over magnitudes, with a negative zero and a subnormal among them. */
function vector(salt: number, e: number, k: number): Float32Array {
  const out = Float32Array.from(SCALES, (scale, j) => (2 * unit(salt, e, k, j) - 1) * scale);
  if (salt === 1 && e === 0 && k === 3) out[0] = -0;
  if (salt === 2 && e === 1 && k === 2) out[1] = 1e-40;
  return out;
}

export const stateOf = (e: number, k: number): Float32Array => vector(1, e, k);
export const actionOf = (e: number, k: number): Float32Array => vector(2, e, k);
/** LeRobot's `timestamp` column: frame_index / fps stored as float32. */
export const timestampOf = (k: number): number => Math.fround(k / FPS);

const madeFrames = new Map<string, Uint8Array>();
/** Frames are made once: the statistics, the encoders and the tests all look at them. */
function memo(kind: string, e: number, k: number, make: () => Uint8Array): Uint8Array {
  const key = `${kind}|${e}|${k}`;
  let frame = madeFrames.get(key);
  if (!frame) madeFrames.set(key, (frame = make()));
  return frame;
}

/** Video frames: smooth content (a gradient and a moving square) that survives lossy coding. */
export const videoFrame = (e: number, k: number): Uint8Array => memo('video', e, k, () => makeVideoFrame(e, k));

function makeVideoFrame(e: number, k: number): Uint8Array {
  const { width, height } = VIDEO;
  const out = new Uint8Array(width * height * 3);
  const sx = (4 * k + 11 * e) % (width - 16);
  const sy = (3 * k + 7 * e) % (height - 16);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = 3 * (y * width + x);
      const inSquare = x >= sx && x < sx + 16 && y >= sy && y < sy + 16;
      out[p] = inSquare ? 235 : 20 + 2 * x;
      out[p + 1] = inSquare ? 210 : 30 + 2 * y + 20 * e;
      // The background's blue steps with the frame, so neighbouring frames differ everywhere.
      out[p + 2] = inSquare ? 40 : 30 + 9 * k;
    }
  }
  return out;
}

/** Image-column frames: noise, which only a lossless path returns unchanged. */
export const imageFrame = (e: number, k: number): Uint8Array =>
  memo('image', e, k, () => Uint8Array.from({ length: IMAGE.width * IMAGE.height * 3 }, (_, i) => Math.floor(256 * unit(3, e, k, i))));

/** Per-feature statistics as LeRobot's JSON holds them (image statistics are (3, 1, 1) lists). */
export type StatsJson = Record<string, Record<string, unknown>>;

export interface Written {
  /** Statistics over all frames: meta/stats.json in v3.0; what pooling the episodes' gives in v2.1. */
  stats: StatsJson;
}

// ---------------------------------------------------------------- Parquet through arrow-rs

let wasm: Promise<typeof ParquetWasm> | undefined;

/** parquet-wasm's ES build (its CommonJS build looks for the .wasm in the working folder). */
function parquetWasm(): Promise<typeof ParquetWasm> {
  wasm ??= (async () => {
    const pw = await loadEsm<typeof ParquetWasm>('parquet-wasm/esm');
    // initSync reads `{ module }` only from an object of its own realm (it checks the prototype);
    // jest's object literals come from the sandbox, so the options object is made from Node's.
    const options = Object.create(Object.getPrototypeOf(process.getBuiltinModule('node:os'))) as { module: Buffer };
    options.module = await readFile(require.resolve('parquet-wasm/esm/parquet_wasm_bg.wasm'));
    pw.initSync(options);
    return pw;
  })();
  return wasm;
}

interface Column {
  name: string;
  type: arrow.DataType;
  values: unknown[];
}

const field = (name: string, type: arrow.DataType): arrow.Field => new arrow.Field(name, type, true);
const fixedFloat32 = (n: number): arrow.DataType => new arrow.FixedSizeList(n, field('element', new arrow.Float32()));
const listOf = (type: arrow.DataType): arrow.DataType => new arrow.List(field('element', type));
const IMAGE_STRUCT = new arrow.Struct([field('bytes', new arrow.Binary()), field('path', new arrow.Utf8())]);

async function writeParquetFile(file: string, columns: Column[], keyValue: Record<string, string>, rowGroupSize?: number): Promise<void> {
  const pw = await parquetWasm();
  const schema = new arrow.Schema(columns.map((c) => field(c.name, c.type)), new Map(Object.entries(keyValue)));
  const table = new arrow.Table(schema, Object.fromEntries(columns.map((c) => [c.name, arrow.vectorFromArray(c.values, c.type)])));
  let props = new pw.WriterPropertiesBuilder()
    .setCompression(pw.Compression.SNAPPY)
    .setDictionaryEnabled(true)
    // pyarrow puts the schema metadata into the file's key/value metadata; arrow-rs only into ARROW:schema.
    .setKeyValueMetadata(new Map(Object.entries(keyValue)));
  if (rowGroupSize !== undefined) props = props.setMaxRowGroupSize(rowGroupSize);
  const bytes = pw.writeParquet(pw.Table.fromIPCStream(arrow.tableToIPC(table, 'stream')), props.build());
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, bytes);
}

// ---------------------------------------------------------------- ffmpeg command line

/** LeRobot's encoder; Debian 12's ffmpeg (what scripts/setup.sh installs) has it. */
async function checkEncoder(): Promise<void> {
  const { stdout } = await run('ffmpeg', ['-hide_banner', '-encoders']);
  if (!/^\s*V\S*\s+libsvtav1\s/m.test(stdout)) throw new Error("this ffmpeg lacks libsvtav1, LeRobot's AV1 encoder");
}

/** encode_video_frames' settings: v2.1 passes g, crf and pix_fmt; v3.0 adds preset 12 and fast-decode=0. */
function encoderArgs(version: Version): string[] {
  return ['-c:v', 'libsvtav1', '-g', '2', '-crf', '30', ...(version === 'v3.0' ? ['-preset', '12', '-svtav1-params', 'fast-decode=0'] : [])];
}

/** Raw rgb24 frames piped into the ffmpeg command line. */
async function ffmpegFromFrames(frames: Uint8Array[], width: number, height: number, output: string[]): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const input = ['-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${width}x${height}`, '-framerate', String(FPS), '-i', 'pipe:0'];
    const child = execFile('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...input, ...output], { maxBuffer: 1 << 24 }, (err, _out, stderr) =>
      err ? reject(new Error(`ffmpeg ${output.join(' ')}: ${String(stderr)}`)) : resolve(),
    );
    child.stdin?.end(Buffer.concat(frames));
  });
}

async function encodeEpisodeVideo(file: string, e: number, version: Version): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const frames = Array.from({ length: LENGTHS[e] as number }, (_, k) => videoFrame(e, k));
  await ffmpegFromFrames(frames, VIDEO.width, VIDEO.height, [...encoderArgs(version), '-pix_fmt', 'yuv420p', '-an', file]);
}

/** The video stream's duration as PyAV reports it (stream.duration * stream.time_base), from ffprobe. */
async function videoDuration(file: string): Promise<number> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=duration_ts,time_base', '-of', 'json', file]);
  const stream = (JSON.parse(stdout) as { streams: Array<{ duration_ts: number; time_base: string }> }).streams[0];
  const [num, den] = (stream?.time_base ?? '').split('/').map(Number);
  if (!stream || !num || !den) throw new Error(`ffprobe found no video duration in ${file}`);
  return (stream.duration_ts * num) / den;
}

/** Appends `next` to `target` without re-encoding (LeRobot's concatenate_video_files). */
async function appendVideo(target: string, next: string, work: string): Promise<void> {
  const list = path.join(work, 'concat.ffconcat');
  await writeFile(list, `ffconcat version 1.0\nfile '${target}'\nfile '${next}'\n`);
  const out = path.join(work, 'concat.mp4');
  await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'concat', '-safe', '0', '-i', list, '-map', '0:v', '-c', 'copy', '-movflags', 'faststart', out]);
  await rename(out, target);
}

async function videoInfo(file: string): Promise<Record<string, unknown>> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=codec_name,pix_fmt,width,height', '-of', 'json', file]);
  const s = (JSON.parse(stdout) as { streams: Array<Record<string, unknown>> }).streams[0] ?? {};
  return {
    'video.height': s.height,
    'video.width': s.width,
    'video.codec': s.codec_name,
    'video.pix_fmt': s.pix_fmt,
    'video.is_depth_map': false,
    'video.fps': FPS,
    'video.channels': 3,
    has_audio: false,
  };
}

/**
 * The image-column frames as PNG files written by ffmpeg (one run for all episodes), per episode
 * [file name as LeRobot names the frame, bytes].
 */
async function pngFrames(work: string, name: (k: number) => string): Promise<Array<Array<[string, Uint8Array]>>> {
  const dir = path.join(work, 'png');
  await mkdir(dir, { recursive: true });
  const all = LENGTHS.flatMap((_, e) => episodeFrames(e));
  await ffmpegFromFrames(all.map(([e, k]) => imageFrame(e, k)), IMAGE.width, IMAGE.height, ['-start_number', '0', '-c:v', 'png', '-f', 'image2', path.join(dir, '%06d.png')]);
  const files = (await readdir(dir)).sort();
  if (files.length !== all.length) throw new Error(`ffmpeg wrote ${files.length} PNGs for ${all.length} frames`);
  const bytes = await Promise.all(files.map(async (f) => new Uint8Array(await readFile(path.join(dir, f)))));
  return LENGTHS.map((_, e) => episodeFrames(e).map(([, k]): [string, Uint8Array] => [name(k), bytes[firstIndex(e) + k] as Uint8Array]));
}

// ---------------------------------------------------------------- statistics

const QUANTILES: Array<[string, number]> = [['q01', 0.01], ['q10', 0.1], ['q50', 0.5], ['q90', 0.9], ['q99', 0.99]];

/**
 * min/max/mean/std (population) of `rows` x `dim` values, plus v3.0's quantiles (numpy's linear
 * rule); `count` is the number of frames (an image's pixels all count as one sample, as in LeRobot).
 */
function statsOf(values: ArrayLike<number>, rows: number, dim: number, quantiles: boolean, shape: (v: number[]) => unknown, count = rows): Record<string, unknown> {
  const cols = Array.from({ length: dim }, (_, d) => Float64Array.from({ length: rows }, (_, r) => values[r * dim + d] as number).sort());
  const mean = cols.map((c) => c.reduce((a, b) => a + b, 0) / rows);
  const out: Record<string, unknown> = {
    min: shape(cols.map((c) => c[0] as number)),
    max: shape(cols.map((c) => c[rows - 1] as number)),
    mean: shape(mean),
    std: shape(cols.map((c, d) => Math.sqrt(c.reduce((a, v) => a + (v - (mean[d] as number)) ** 2, 0) / rows))),
    count: [count],
  };
  if (quantiles) {
    for (const [name, q] of QUANTILES) {
      const at = q * (rows - 1);
      const lo = Math.floor(at);
      out[name] = shape(cols.map((c) => (c[lo] as number) + (at - lo) * ((c[Math.min(lo + 1, rows - 1)] as number) - (c[lo] as number))));
    }
  }
  return out;
}

/** Statistics of every feature over the (episode, frame) pairs given, as LeRobot's compute_episode_stats. */
function featureStats(frames: Array<[number, number]>, quantiles: boolean): StatsJson {
  const n = frames.length;
  const flat = (of: (e: number, k: number) => ArrayLike<number>, dim: number): Float64Array => {
    const out = new Float64Array(n * dim);
    frames.forEach(([e, k], r) => out.set(Array.from(of(e, k)), r * dim));
    return out;
  };
  const vec = (v: number[]): number[] => v;
  const image = (v: number[]): number[][][] => v.map((x) => [[x]]);
  /** Channel values in [0, 1] of every pixel of every frame. */
  const pixels = (of: (e: number, k: number) => Uint8Array, plane: number): Float64Array => {
    const out = new Float64Array(n * plane * 3);
    frames.forEach(([e, k], r) => of(e, k).forEach((b, i) => { out[r * plane * 3 + i] = b / 255; }));
    return out;
  };
  return {
    action: statsOf(flat(actionOf, DIM), n, DIM, quantiles, vec),
    'observation.state': statsOf(flat(stateOf, DIM), n, DIM, quantiles, vec),
    [VIDEO.key]: statsOf(pixels(videoFrame, VIDEO.width * VIDEO.height), n * VIDEO.width * VIDEO.height, 3, quantiles, image, n),
    [IMAGE.key]: statsOf(pixels(imageFrame, IMAGE.width * IMAGE.height), n * IMAGE.width * IMAGE.height, 3, quantiles, image, n),
    timestamp: statsOf(frames.map(([, k]) => timestampOf(k)), n, 1, quantiles, vec),
    frame_index: statsOf(frames.map(([, k]) => k), n, 1, quantiles, vec),
    episode_index: statsOf(frames.map(([e]) => e), n, 1, quantiles, vec),
    index: statsOf(frames.map(([e, k]) => firstIndex(e) + k), n, 1, quantiles, vec),
    task_index: statsOf(frames.map(([e]) => EPISODE_TASK[e] as number), n, 1, quantiles, vec),
  };
}

const episodeFrames = (e: number): Array<[number, number]> => Array.from({ length: LENGTHS[e] as number }, (_, k) => [e, k]);

// ---------------------------------------------------------------- the folder

function features(video: Record<string, unknown>, v3: boolean): Record<string, unknown> {
  const scalar = (dtype: string): Record<string, unknown> => ({ dtype, shape: [1], names: null });
  const camera = (dtype: string, { width, height }: { width: number; height: number }): Record<string, unknown> =>
    ({ dtype, shape: [height, width, 3], names: ['height', 'width', 'channels'] });
  return {
    action: { dtype: 'float32', shape: [DIM], names: MOTORS },
    'observation.state': { dtype: 'float32', shape: [DIM], names: MOTORS },
    [VIDEO.key]: { ...camera('video', VIDEO), info: { ...video, ...(v3 ? { 'video.g': 2, 'video.crf': 30, 'video.preset': 12, 'video.fast_decode': 0 } : {}) } },
    [IMAGE.key]: camera('image', IMAGE),
    timestamp: scalar('float32'),
    frame_index: scalar('int64'),
    episode_index: scalar('int64'),
    index: scalar('int64'),
    task_index: scalar('int64'),
  };
}

/** The `huggingface` key: HF datasets' Features.to_dict (datasets 3 says Sequence, datasets 4 List). */
function hfFeatures(v3: boolean): string {
  const value = (dtype: string): Record<string, string> => ({ dtype, _type: 'Value' });
  const sequence = { feature: value('float32'), length: DIM, _type: v3 ? 'List' : 'Sequence' };
  return JSON.stringify({
    info: {
      features: {
        action: sequence,
        'observation.state': sequence,
        [IMAGE.key]: { _type: 'Image' },
        timestamp: value('float32'),
        frame_index: value('int64'),
        episode_index: value('int64'),
        index: value('int64'),
        task_index: value('int64'),
      },
    },
  });
}

/** The frame rows of `episodes`, columns in HF-features order (video cameras are not in the rows). */
function dataColumns(episodes: number[], pngs: Array<Array<[string, Uint8Array]>>): Column[] {
  const frames = episodes.flatMap(episodeFrames);
  return [
    { name: 'action', type: fixedFloat32(DIM), values: frames.map(([e, k]) => actionOf(e, k)) },
    { name: 'observation.state', type: fixedFloat32(DIM), values: frames.map(([e, k]) => stateOf(e, k)) },
    {
      name: IMAGE.key,
      type: IMAGE_STRUCT,
      values: frames.map(([e, k]) => {
        const [name, bytes] = (pngs[e] as Array<[string, Uint8Array]>)[k] as [string, Uint8Array];
        return { bytes, path: name };
      }),
    },
    { name: 'timestamp', type: new arrow.Float32(), values: frames.map(([, k]) => timestampOf(k)) },
    { name: 'frame_index', type: new arrow.Int64(), values: frames.map(([, k]) => BigInt(k)) },
    { name: 'episode_index', type: new arrow.Int64(), values: frames.map(([e]) => BigInt(e)) },
    { name: 'index', type: new arrow.Int64(), values: frames.map(([e, k]) => BigInt(firstIndex(e) + k)) },
    { name: 'task_index', type: new arrow.Int64(), values: frames.map(([e]) => BigInt(EPISODE_TASK[e] as number)) },
  ];
}

const writeJson = async (file: string, value: unknown): Promise<void> => {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, JSON.stringify(value, null, 4));
};
const writeJsonLines = (file: string, rows: unknown[]): Promise<void> => writeFile(file, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');

/** Writes a LeRobot `version` folder of the recording above into `dir` (an empty or missing folder). */
export async function writeIndependentDataset(dir: string, version: Version): Promise<Written> {
  const v3 = version === 'v3.0';
  await checkEncoder();
  const work = await mkdtemp(path.join(os.tmpdir(), 'smolvla-independent-'));
  try {
    await mkdir(path.join(dir, 'meta'), { recursive: true });
    const episodes = LENGTHS.map((_, e) => e);
    const pngs = await pngFrames(work, (k) => `frame${v3 ? '-' : '_'}${String(k).padStart(6, '0')}.png`);
    const perEpisode = episodes.map((e) => featureStats(episodeFrames(e), v3));
    const stats = featureStats(episodes.flatMap(episodeFrames), v3);
    const kv = { huggingface: hfFeatures(v3) };
    let firstVideo: string;
    if (!v3) {
      await Promise.all(episodes.map(async (e) => {
        const episode = String(e).padStart(6, '0');
        await writeParquetFile(path.join(dir, 'data', 'chunk-000', `episode_${episode}.parquet`), dataColumns([e], pngs), kv);
        await encodeEpisodeVideo(path.join(dir, 'videos', 'chunk-000', VIDEO.key, `episode_${episode}.mp4`), e, version);
      }));
      firstVideo = path.join(dir, 'videos', 'chunk-000', VIDEO.key, 'episode_000000.mp4');
      await writeJsonLines(path.join(dir, 'meta', 'episodes.jsonl'), episodes.map((e) => ({ episode_index: e, tasks: [TASKS[EPISODE_TASK[e] as number]], length: LENGTHS[e] })));
      await writeJsonLines(path.join(dir, 'meta', 'tasks.jsonl'), TASKS.map((task, i) => ({ task_index: i, task })));
      await writeJsonLines(path.join(dir, 'meta', 'episodes_stats.jsonl'), episodes.map((e) => ({ episode_index: e, stats: perEpisode[e] })));
    } else {
      await writeParquetFile(path.join(dir, 'data', 'chunk-000', 'file-000.parquet'), dataColumns(episodes, pngs), kv, V3_DATA_ROW_GROUP);
      firstVideo = path.join(dir, 'videos', VIDEO.key, 'chunk-000', 'file-000.mp4');
      // Each episode encoded alone, then appended to the camera's file in episode order.
      const own = episodes.map((e) => (e === 0 ? firstVideo : path.join(work, `episode-${e}.mp4`)));
      await Promise.all(episodes.map((e) => encodeEpisodeVideo(own[e] as string, e, version)));
      const durations = await Promise.all(own.map(videoDuration));
      const spans: Array<[number, number]> = [];
      for (const e of episodes) {
        const from = e === 0 ? 0 : (spans[e - 1] as [number, number])[1];
        spans.push([from, from + (durations[e] as number)]);
        if (e > 0) await appendVideo(firstVideo, own[e] as string, work);
      }
      await writeEpisodesIndex(path.join(dir, 'meta', 'episodes', 'chunk-000', 'file-000.parquet'), spans, perEpisode);
      await writeTasksParquet(path.join(dir, 'meta', 'tasks.parquet'));
      await writeJson(path.join(dir, 'meta', 'stats.json'), stats);
    }
    const total = LENGTHS.reduce((a, b) => a + b, 0);
    const common = { total_episodes: episodes.length, total_frames: total, total_tasks: TASKS.length };
    const info = v3
      ? {
          codebase_version: 'v3.0', fps: FPS, features: features(await videoInfo(firstVideo), true), ...common,
          chunks_size: 1000, data_files_size_in_mb: 100, video_files_size_in_mb: 200,
          data_path: 'data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet',
          video_path: 'videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4',
          robot_type: 'so100_follower', splits: { train: `0:${episodes.length}` },
        }
      : {
          codebase_version: 'v2.1', robot_type: 'so100', ...common, total_videos: episodes.length, total_chunks: 1, chunks_size: 1000,
          fps: FPS, splits: { train: `0:${episodes.length}` },
          data_path: 'data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet',
          video_path: 'videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4',
          features: features(await videoInfo(firstVideo), false),
        };
    await writeJson(path.join(dir, 'meta', 'info.json'), info);
    return { stats };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** meta/episodes/…: the columns `pa.Table.from_pydict` makes of LeRobot's episode dicts. */
async function writeEpisodesIndex(file: string, spans: Array<[number, number]>, perEpisode: StatsJson[]): Promise<void> {
  const int64 = new arrow.Int64();
  const float64 = new arrow.Float64();
  const episodes = LENGTHS.map((_, e) => e);
  const ints = (name: string, of: (e: number) => number): Column => ({ name, type: int64, values: episodes.map((e) => BigInt(of(e))) });
  const columns: Column[] = [
    ints('episode_index', (e) => e),
    { name: 'tasks', type: listOf(new arrow.Utf8()), values: episodes.map((e) => [TASKS[EPISODE_TASK[e] as number]]) },
    ints('length', (e) => LENGTHS[e] as number),
    ints('data/chunk_index', () => 0),
    ints('data/file_index', () => 0),
    ints('dataset_from_index', firstIndex),
    ints('dataset_to_index', (e) => firstIndex(e) + (LENGTHS[e] as number)),
    ints(`videos/${VIDEO.key}/chunk_index`, () => 0),
    ints(`videos/${VIDEO.key}/file_index`, () => 0),
    { name: `videos/${VIDEO.key}/from_timestamp`, type: float64, values: spans.map(([a]) => a) },
    { name: `videos/${VIDEO.key}/to_timestamp`, type: float64, values: spans.map(([, b]) => b) },
  ];
  for (const [feature, entry] of Object.entries(perEpisode[0] as StatsJson)) {
    for (const [stat, sample] of Object.entries(entry)) {
      const depth = (v: unknown): number => (Array.isArray(v) ? 1 + depth(v[0]) : 0);
      let type: arrow.DataType = stat === 'count' ? int64 : float64;
      for (let d = depth(sample); d > 0; d--) type = listOf(type);
      const values = perEpisode.map((s) => (s[feature] as Record<string, unknown>)[stat]);
      columns.push({ name: `stats/${feature}/${stat}`, type, values: stat === 'count' ? values.map((v) => (v as number[]).map(BigInt)) : values });
    }
  }
  columns.push(ints('meta/episodes/chunk_index', () => 0), ints('meta/episodes/file_index', () => 0));
  await writeParquetFile(file, columns, {});
}

/** meta/tasks.parquet as pandas writes a DataFrame of task_index indexed by the task text. */
async function writeTasksParquet(file: string): Promise<void> {
  const pandas = {
    index_columns: ['task'],
    column_indexes: [{ name: null, field_name: null, pandas_type: 'unicode', numpy_type: 'object', metadata: { encoding: 'UTF-8' } }],
    columns: [
      { name: 'task_index', field_name: 'task_index', pandas_type: 'int64', numpy_type: 'int64', metadata: null },
      { name: 'task', field_name: 'task', pandas_type: 'unicode', numpy_type: 'object', metadata: null },
    ],
    creator: { library: 'pyarrow', version: '21.0.0' },
    pandas_version: '2.3.1',
  };
  await writeParquetFile(file, [
    { name: 'task_index', type: new arrow.Int64(), values: TASKS.map((_, i) => BigInt(i)) },
    { name: 'task', type: new arrow.Utf8(), values: [...TASKS] },
  ], { pandas: JSON.stringify(pandas) });
}
