/** ffmpeg decoding: timestamps in the stream's own time, seeking windows, frame lookup by time. */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { encodePng, encodeVideo } from '../../lib/data/encode';
import { decodeImages, decodeVideo, frameAt, probeStartTime, type DecodedFrames } from '../../lib/data/video';
import { frameImage, HEIGHT, tempDir, WIDTH } from './fixtures';

describe('decoding', () => {
  const tmp = tempDir('video');
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('decodes a time window in stream time, also when the file does not start at 0', async () => {
    const frames = Array.from({ length: 12 }, (_, k) => frameImage(0, k, 0));
    const plain = path.join(tmp, 'plain.mp4');
    await encodeVideo(plain, frames, WIDTH, HEIGHT, 10);
    const shifted = path.join(tmp, 'shifted.mp4');
    execFileSync('ffmpeg', ['-loglevel', 'error', '-i', plain, '-c', 'copy', '-output_ts_offset', '2', shifted]);
    expect(await probeStartTime(plain)).toBe(0);
    expect(await probeStartTime(shifted)).toBeCloseTo(2, 6);

    const all = await decodeVideo(plain);
    expect(all.count).toBe(12);
    expect(Array.from(all.timestamps, (t) => +t.toFixed(3))).toEqual(Array.from({ length: 12 }, (_, k) => k / 10));
    const window = await decodeVideo(shifted, { start: 2.25, end: 2.55, startTime: 2 });
    expect(Array.from(window.timestamps, (t) => +t.toFixed(3))).toEqual([2.3, 2.4, 2.5]);
    expect(window.rgb.subarray(0, window.rgb.length / 3)).toEqual(all.rgb.subarray(3 * all.rgb.length / 12, 4 * all.rgb.length / 12));
  });

  it('decodes embedded PNG bytes losslessly, in order', async () => {
    const images = [frameImage(1, 0, 0), frameImage(1, 1, 1)];
    const decoded = await decodeImages(images.map((img) => encodePng(img, WIDTH, HEIGHT)), 'test');
    expect([decoded.count, decoded.width, decoded.height]).toEqual([2, WIDTH, HEIGHT]);
    expect(decoded.rgb).toEqual(new Uint8Array(Buffer.concat(images)));
  });

  it('names the file when ffmpeg cannot read it', async () => {
    const bogus = path.join(tmp, 'bogus.mp4');
    fs.writeFileSync(bogus, 'not a video');
    await expect(decodeVideo(bogus)).rejects.toThrow(new RegExp(`ffmpeg failed \\(decoding ${bogus}\\): exit 1`));
  });
});

describe('frame lookup by timestamp', () => {
  const frames: DecodedFrames = { width: 1, height: 1, count: 4, timestamps: Float64Array.from([0, 0.1, 0.2, 0.4]), rgb: new Uint8Array(12) };

  it('picks the nearest frame within the tolerance', () => {
    expect(frameAt(frames, 0.1000001, 0.1, 'x')).toBe(1);
    expect(frameAt(frames, 0.14, 0.1, 'x')).toBe(1);
    expect(frameAt(frames, 0.31, 0.1, 'x')).toBe(3);
  });

  it('names the file and the timestamp when no frame is close enough', () => {
    expect(() => frameAt(frames, 0.7, 0.1, "camera 'top', episode 3, frame 7 in /d/v.mp4")).toThrow(
      "camera 'top', episode 3, frame 7 in /d/v.mp4: no frame within 0.1000 s of timestamp 0.7000 s (nearest decoded: 0.2000, 0.4000; 4 frames decoded)",
    );
  });
});
