/**
 * The dataset reader against LeRobot folders it did not write: v2.1 and v3.0 built by
 * independent-dataset.ts (Parquet by arrow-rs, AV1 videos and PNG frames by the ffmpeg command line
 * with LeRobot's settings). Every value read must be the value written: state and action bit for
 * bit, indices exactly, timestamps exactly as stored (and within tolerance_s of frame_index / fps),
 * PNG frames exactly, video frames within the codec's error and nearer their own source frame than
 * a neighbour's; the statistics as written; and one training step runs on each folder.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { runTrain } from '../../lib/cli/train';
import { openLeRobotDataset, type Dataset, type Stats } from '../../lib/data/index';
import { hyparquet } from '../../lib/data/esm';
import { DEFAULT_TOLERANCE_S } from '../../lib/data/lerobot/dataset';
import { readParquet } from '../../lib/data/parquet';
import { SmolVLAModel } from '../../lib/model';
import { tinyConfig } from '../../lib/train/presets';
import { fitConfigToDataset } from '../../lib/train/setup';
import { captureIO, tempDir } from '../train/helpers';
import {
  EPISODE_TASK, FPS, IMAGE, LENGTHS, TASKS, VIDEO,
  actionOf, imageFrame, stateOf, timestampOf, videoFrame, writeIndependentDataset,
  type StatsJson, type Version, type Written,
} from './independent-dataset';
import { meanAbsDiff, toChw } from './fixtures';

const TOTAL = LENGTHS.reduce((a, b) => a + b, 0);
const CHUNK = 5;
/** Mean absolute error (of [0, 1] values) allowed for AV1 at crf 30 on these frames (measured: 0.0135 at worst). */
const CODEC_TOLERANCE = 0.025;
const tmp = tempDir('independent');

/** Episode and frame of dataset position i. */
function locate(i: number): { e: number; k: number } {
  let e = 0;
  let k = i;
  while (k >= (LENGTHS[e] as number)) k -= LENGTHS[e++] as number;
  return { e, k };
}

const bits = (v: Float32Array): number[] => Array.from(new Uint32Array(v.buffer, v.byteOffset, v.length));

/** A written statistic (nested lists for images) as the float32 values the reader keeps. */
const written = (stats: StatsJson, key: string, stat: string): number[] => Array.from(Float32Array.from((stats[key]?.[stat] as unknown[]).flat(2) as number[]));

describe.each(['v2.1', 'v3.0'] as const)('a LeRobot %s folder written by arrow-rs and the ffmpeg CLI', (version: Version) => {
  const root = path.join(tmp, version);
  let out: Written;
  let ds: Dataset;

  beforeAll(async () => {
    out = await writeIndependentDataset(root, version);
    ds = await openLeRobotDataset({ repoId: `independent/${version}`, root, chunkSize: CHUNK });
  });
  afterAll(() => ds?.close());

  const dataFile = (): string => path.join(root, 'data', 'chunk-000', version === 'v2.1' ? 'episode_000002.parquet' : 'file-000.parquet');

  test('the files are not written by this project: parquet-rs Parquet with the HF features key, AV1 from libsvtav1', async () => {
    const { asyncBufferFromFile, parquetMetadataAsync } = await hyparquet();
    const metadata = await parquetMetadataAsync(await asyncBufferFromFile(dataFile()));
    expect(metadata.created_by).toMatch(/^parquet-rs /);
    // LeRobot's v3.0 data files hold many row groups; these cut through episodes.
    expect(metadata.row_groups.length).toBe(version === 'v2.1' ? 1 : Math.ceil(TOTAL / 8));
    const { keyValue } = await readParquet(dataFile());
    expect(Object.keys(keyValue).sort()).toEqual(['ARROW:schema', 'huggingface']);
    const hf = JSON.parse(keyValue.huggingface as string) as { info: { features: Record<string, { _type: string; length?: number }> } };
    expect(hf.info.features['observation.state']).toEqual({ feature: { dtype: 'float32', _type: 'Value' }, length: 6, _type: version === 'v2.1' ? 'Sequence' : 'List' });
    expect(hf.info.features[IMAGE.key]).toEqual({ _type: 'Image' });
    const video = version === 'v2.1'
      ? path.join(root, 'videos', 'chunk-000', VIDEO.key, 'episode_000000.mp4')
      : path.join(root, 'videos', VIDEO.key, 'chunk-000', 'file-000.mp4');
    const probe = execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=codec_name,pix_fmt,nb_frames', '-of', 'csv=p=0', video], { encoding: 'utf8' });
    expect(probe.trim()).toBe(`av1,yuv420p,${version === 'v2.1' ? LENGTHS[0] : TOTAL}`);
  });

  test('the episode index, tasks and features', () => {
    expect(ds.length).toBe(TOTAL);
    expect(ds.fps).toBe(FPS);
    expect(ds.cameraKeys).toEqual([VIDEO.key, IMAGE.key]);
    expect([ds.stateDim, ds.actionDim]).toEqual([6, 6]);
    expect(ds.episodes).toEqual(LENGTHS.map((length, index) => ({ index, length, tasks: [TASKS[EPISODE_TASK[index] as number]] })));
  });

  test('state and action bit for bit, indices exactly, timestamps as stored', async () => {
    for (let i = 0; i < TOTAL; i++) {
      const { e, k } = locate(i);
      const s = await ds.get(i);
      expect({ i, e: s.episodeIndex, k: s.frameIndex, index: s.index, task: s.task }).toEqual({ i, e, k, index: i, task: TASKS[EPISODE_TASK[e] as number] });
      expect(s.timestamp).toBe(timestampOf(k));
      expect(Math.abs(s.timestamp - k / FPS)).toBeLessThanOrEqual(DEFAULT_TOLERANCE_S);
      expect(bits(s.state)).toEqual(bits(stateOf(e, k)));
      const last = (LENGTHS[e] as number) - 1;
      for (let c = 0; c < CHUNK; c++) {
        expect(bits(s.actions.subarray(c * 6, (c + 1) * 6))).toEqual(bits(actionOf(e, Math.min(k + c, last))));
        expect(s.actionIsPad[c]).toBe(k + c > last ? 1 : 0);
      }
    }
    // The negative zero and the subnormal survive (they are in the recording on purpose).
    expect(Object.is((await ds.get(3)).state[0], -0)).toBe(true);
    expect((await ds.get(LENGTHS[0] as number)).actions[6 * 2 + 1]).toBe(Math.fround(1e-40));
  });

  test('PNG frames exactly; every video frame within the codec tolerance of its source frame', async () => {
    let worst = 0;
    for (let i = 0; i < TOTAL; i++) {
      const { e, k } = locate(i);
      const s = await ds.get(i);
      expect(s.images[IMAGE.key]?.shape).toEqual([3, IMAGE.height, IMAGE.width]);
      expect(s.images[IMAGE.key]?.data).toEqual(toChw(imageFrame(e, k), IMAGE.width, IMAGE.height));
      const got = s.images[VIDEO.key]?.data as Float32Array;
      expect(s.images[VIDEO.key]?.shape).toEqual([3, VIDEO.height, VIDEO.width]);
      const own = meanAbsDiff(got, toChw(videoFrame(e, k), VIDEO.width, VIDEO.height));
      worst = Math.max(worst, own);
      // Nearer its own frame than either neighbour's: the frame at this timestamp was picked.
      for (const other of [k - 1, k + 1].filter((n) => n >= 0 && n < (LENGTHS[e] as number))) {
        expect({ i, nearer: own < meanAbsDiff(got, toChw(videoFrame(e, other), VIDEO.width, VIDEO.height)) }).toEqual({ i, nearer: true });
      }
    }
    expect(worst).toBeLessThan(CODEC_TOLERANCE);
  });

  test('statistics as written (v2.1: pooled from episodes_stats.jsonl; v3.0: meta/stats.json, else pooled from the episode index)', async () => {
    const check = (stats: Record<string, Stats>, exact: boolean): void => {
      for (const key of ['observation.state', 'action', VIDEO.key, IMAGE.key]) {
        const s = stats[key] as Stats;
        for (const stat of ['mean', 'std', 'min', 'max'] as const) {
          const want = written(out.stats, key, stat);
          const got = Array.from(s[stat] as Float32Array);
          if (exact) expect({ key, stat, got }).toEqual({ key, stat, got: want });
          // Pooling per-episode statistics rounds differently from computing them over all frames.
          else got.forEach((v, d) => expect({ key, stat, d, close: Math.abs(v - (want[d] as number)) <= 1e-6 * Math.max(1, Math.abs(want[d] as number)) }).toEqual({ key, stat, d, close: true }));
        }
        expect(s.count).toBe(TOTAL);
      }
    };
    check(ds.stats, version === 'v3.0');
    if (version === 'v3.0') {
      // Without meta/stats.json: the arrow-rs `stats/<feature>/<stat>` list columns of the episode index.
      const copy = path.join(tmp, 'v3.0-no-stats');
      fs.cpSync(root, copy, { recursive: true });
      fs.rmSync(path.join(copy, 'meta', 'stats.json'));
      const pooled = await openLeRobotDataset({ repoId: 'independent/no-stats', root: copy, chunkSize: CHUNK });
      check(pooled.stats, false);
      await pooled.close();
    }
  });

  test('one training step with the tiny model fitted to the folder', async () => {
    const small = path.join(tmp, `${version}-policy`);
    const model = await SmolVLAModel.create(fitConfigToDataset(tinyConfig(), ds, new Set()), { seed: 5 });
    await model.save(small);
    const c = captureIO();
    const argv = [`--policy.path=${small}`, `--dataset.repo_id=independent/${version}`, `--dataset.root=${root}`, '--dataset.eval_split=0', '--steps=1', '--batch_size=4', '--log_freq=1', `--output_dir=${path.join(tmp, `${version}-run`)}`];
    expect({ code: await runTrain(argv, c.io), err: c.err() }).toEqual({ code: 0, err: expect.not.stringContaining('smolvla-node train:') });
    const metrics = fs.readFileSync(path.join(tmp, `${version}-run`, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(metrics.map((m) => [m.kind, m.step])).toEqual([['train', 1]]);
    // The log writes null for a NaN or infinite value.
    expect(Object.entries(metrics[0] ?? {}).filter(([, v]) => v === null)).toEqual([]);
  });
});
