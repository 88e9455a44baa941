/**
 * Videos as LeRobot encodes them: the MP4s of a written dataset re-encoded by the ffmpeg command
 * line with LeRobot's settings (encode_video_frames: AV1, yuv420p, g=2, crf=30 — the v3.0
 * default — and HEVC with libx265 where this ffmpeg has it), so the reader meets streams its own
 * writer never produces; every frame must be found within LeRobot's tolerance_s (1e-4 s). Also a
 * v2.0 folder (statistics in meta/stats.json instead of meta/episodes_stats.jsonl).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { openLeRobotDataset, writeLeRobotDataset } from '../../lib/data/index';
import { CAMERAS, FPS, HEIGHT, LENGTHS, STATE_DIM, WIDTH, frameImage, meanAbsDiff, recording, stateOf, tempDir, toChw } from './fixtures';

const ENCODERS = execFileSync('ffmpeg', ['-hide_banner', '-encoders'], { encoding: 'utf8' });
const has = (name: string) => new RegExp(`\\s${name}\\s`).test(ENCODERS);
// LeRobot's own encoder, libsvtav1, refuses frames under 64x64; these 20x16 test frames take libaom's
// AV1 at the same keyframe interval and quality.
const AV1 = ['-c:v', 'libaom-av1', '-g', '2', '-crf', '30', '-cpu-used', '8'];
const CODECS: Array<[string, string[]]> = [['av1', AV1]];
if (has('libx265')) CODECS.push(['hevc', ['-c:v', 'libx265', '-g', '2', '-crf', '30', '-x265-params', 'log-level=error']]);

const tmp = tempDir('codecs');
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function mp4s(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? mp4s(path.join(dir, e.name)) : e.name.endsWith('.mp4') ? [path.join(dir, e.name)] : []));
}

/** Re-encodes every video of `root` with ffmpeg and records the codec in meta/info.json. */
function reencode(root: string, codec: string, args: string[]): void {
  for (const file of mp4s(path.join(root, 'videos'))) {
    const out = `${file}.tmp.mp4`;
    execFileSync('ffmpeg', ['-y', '-loglevel', 'error', '-i', file, ...args, '-pix_fmt', 'yuv420p', '-an', out]);
    fs.renameSync(out, file);
  }
  const infoFile = path.join(root, 'meta', 'info.json');
  const info = JSON.parse(fs.readFileSync(infoFile, 'utf8'));
  for (const f of Object.values(info.features) as Array<{ dtype: string; info?: Record<string, unknown> }>) {
    if (f.dtype === 'video' && f.info) f.info['video.codec'] = codec;
  }
  fs.writeFileSync(infoFile, JSON.stringify(info, null, 4));
}

function probeCodec(file: string): string {
  return execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=codec_name', '-of', 'csv=p=0', file], { encoding: 'utf8' }).trim();
}

test('this ffmpeg encodes AV1 (LeRobot v3.0 default); HEVC is tested when listed', () => {
  expect(CODECS.map(([c]) => c)).toContain('av1');
});

describe.each(CODECS)('%s videos', (codec, args) => {
  test.each(['v2.1', 'v3.0'] as const)('in a %s folder: every frame decodes at its timestamp within 1e-4 s', async (version) => {
    const root = path.join(tmp, `${codec}-${version}`);
    await writeLeRobotDataset(root, { version, fps: FPS, episodes: recording(), imageSize: [WIDTH, HEIGHT], cameraKeys: CAMERAS, ...(version === 'v3.0' ? { episodesPerFile: 2 } : {}) });
    reencode(root, codec, args);
    expect(probeCodec(mp4s(path.join(root, 'videos'))[0]!)).toBe(codec);
    const ds = await openLeRobotDataset({ repoId: 'test/codec', root, chunkSize: 4 });
    try {
      let i = 0;
      for (let e = 0; e < LENGTHS.length; e++) {
        for (let k = 0; k < LENGTHS[e]!; k++, i++) {
          const s = await ds.get(i);
          CAMERAS.forEach((key, c) => {
            const got = s.images[key]!.data as Float32Array;
            const want = toChw(frameImage(e, k, c), WIDTH, HEIGHT);
            expect({ e, k, c, close: meanAbsDiff(got, want) < 0.08 }).toEqual({ e, k, c, close: true });
          });
        }
      }
    } finally {
      await ds.close();
    }
  });
});

test('a v2.0 folder: statistics from meta/stats.json', async () => {
  const root = path.join(tmp, 'v20');
  await writeLeRobotDataset(root, { version: 'v2.1', fps: FPS, episodes: recording(), imageSize: [WIDTH, HEIGHT], cameraKeys: CAMERAS });
  const infoFile = path.join(root, 'meta', 'info.json');
  const info = JSON.parse(fs.readFileSync(infoFile, 'utf8'));
  info.codebase_version = 'v2.0';
  fs.writeFileSync(infoFile, JSON.stringify(info, null, 4));
  fs.rmSync(path.join(root, 'meta', 'episodes_stats.jsonl'));
  const states = LENGTHS.flatMap((n, e) => Array.from({ length: n }, (_, k) => stateOf(e, k)));
  const mean = Array.from({ length: STATE_DIM }, (_, j) => states.reduce((a, s) => a + s[j]!, 0) / states.length);
  const stats = { 'observation.state': { mean, std: mean.map(() => 1.5), min: mean.map(() => -1), max: mean.map(() => 500), count: [states.length] } };
  fs.writeFileSync(path.join(root, 'meta', 'stats.json'), JSON.stringify(stats));
  const ds = await openLeRobotDataset({ repoId: 'test/v20', root, chunkSize: 4 });
  try {
    expect(Array.from(ds.stats['observation.state']!.mean!)).toEqual(mean.map(Math.fround));
    expect(Array.from(ds.stats['observation.state']!.std!)).toEqual([1.5, 1.5, 1.5]);
    expect(ds.length).toBe(states.length);
  } finally {
    await ds.close();
  }
});
