/** Decoding video files and embedded images into RGB frames with ffmpeg, and picking frames by time. */
import type { SampleImage } from './types';
import { runFfmpeg, type FfmpegResult } from './ffmpeg';
import { SmolVLAError } from '../errors';

/** Frames of one decode: `count` HWC rgb24 frames back to back, with their presentation times. */
export interface DecodedFrames {
  width: number;
  height: number;
  count: number;
  /** Seconds, in the file's own time base (ffmpeg -copyts), as LeRobot's decoders report them. */
  timestamps: Float64Array;
  rgb: Uint8Array;
}

// ffmpeg's showinfo filter logs one line per frame: "n: 0 pts: 0 pts_time:0 ... s:20x16 ...".
const SHOWINFO_LINE = /\bn:\s*\d+\s+pts:\s*(\S+)\s+pts_time:(\S+)[^\n]*?\bs:(\d+)x(\d+)/g;
// ...and its time base once: "config in time_base: 1/15360, ...". pts_time is printed with six
// significant digits (3e-4 s off at 123.333 s, more than LeRobot's 1e-4 s tolerance), so the exact
// time pts * time_base is used when both are known.
const TIME_BASE = /config in time_base:\s*(\d+)\/(\d+)/;

const RAW_OUTPUT = ['-vf', 'showinfo', '-vsync', 'passthrough', '-an', '-sn', '-dn', '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'];

function collectFrames(result: FfmpegResult, what: string): DecodedFrames {
  const times: number[] = [];
  let width = 0;
  let height = 0;
  const tb = TIME_BASE.exec(result.stderr);
  const timeBase = tb && Number(tb[2]) > 0 ? Number(tb[1]) / Number(tb[2]) : null;
  for (const m of result.stderr.matchAll(SHOWINFO_LINE)) {
    const w = Number(m[3]);
    const h = Number(m[4]);
    if (times.length === 0) {
      width = w;
      height = h;
    } else if (w !== width || h !== height) {
      throw new SmolVLAError('ERR_SMOLVLA_IO', `${what}: frame ${times.length} is ${w}x${h} but the first frame is ${width}x${height}`);
    }
    const pts = Number(m[1]);
    times.push(timeBase !== null && Number.isSafeInteger(pts) ? pts * timeBase : Number(m[2]));
  }
  const frameBytes = width * height * 3;
  if (times.length === 0 || result.stdout.length !== times.length * frameBytes) {
    throw new SmolVLAError('ERR_SMOLVLA_IO',
      `${what}: ffmpeg reported ${times.length} frames of ${width}x${height} but wrote ${result.stdout.length} bytes`,
    );
  }
  const rgb = new Uint8Array(result.stdout.buffer, result.stdout.byteOffset, result.stdout.length);
  return { width, height, count: times.length, timestamps: Float64Array.from(times), rgb };
}

/** The container's start time in seconds (0 for nearly every MP4; input seeking is relative to it). */
export async function probeStartTime(file: string): Promise<number> {
  const args = ['-v', 'error', '-show_entries', 'format=start_time', '-of', 'default=noprint_wrappers=1:nokey=1', file];
  const { stdout } = await runFfmpeg(args, `probing ${file}`, undefined, 'ffprobe');
  const value = Number.parseFloat(stdout.toString('utf8'));
  return Number.isFinite(value) ? value : 0;
}

/**
 * Decodes the frames of `file` whose timestamps lie in [start, end] seconds of stream time (the
 * whole file when no window is given). Input seeking keeps one episode of a large v3.0 file cheap;
 * `startTime` is the file's start time from probeStartTime, since ffmpeg seeks relative to it.
 */
export async function decodeVideo(file: string, window?: { start: number; end: number; startTime: number }): Promise<DecodedFrames> {
  let seek: string[] = [];
  if (window) {
    const start = window.start - window.startTime;
    seek = [...(start > 0 ? ['-ss', start.toFixed(6)] : []), '-to', (window.end - window.startTime).toFixed(6)];
  }
  const what = `decoding ${file}${window ? ` from ${window.start.toFixed(4)} s to ${window.end.toFixed(4)} s` : ''}`;
  // -copyts keeps the stream's own timestamps, which is what LeRobot's query timestamps refer to.
  const result = await runFfmpeg(['-copyts', ...seek, '-i', file, '-map', '0:v:0', ...RAW_OUTPUT], what);
  return collectFrames(result, what);
}

/** Decodes encoded images (PNG or JPEG bytes, as LeRobot embeds them in Parquet), in order. */
export async function decodeImages(images: Uint8Array[], what: string): Promise<DecodedFrames> {
  const first = images[0];
  if (!first) throw new SmolVLAError('ERR_SMOLVLA_IO', `${what}: no images to decode`);
  const isPng = first[0] === 0x89 && first[1] === 0x50 && first[2] === 0x4e && first[3] === 0x47;
  const isJpeg = first[0] === 0xff && first[1] === 0xd8;
  const demuxer = isPng ? 'png_pipe' : isJpeg ? 'jpeg_pipe' : 'image2pipe';
  const input = Buffer.concat(images);
  const decoded = collectFrames(await runFfmpeg(['-f', demuxer, '-i', 'pipe:0', ...RAW_OUTPUT], what, input), what);
  if (decoded.count !== images.length) {
    throw new SmolVLAError('ERR_SMOLVLA_IO', `${what}: ${images.length} images in, ${decoded.count} frames decoded`);
  }
  return decoded;
}

/** Index of the frame nearest to time `t`, or an error when it is further than `tolerance` seconds. */
export function frameAt(frames: DecodedFrames, t: number, tolerance: number, what: string): number {
  const ts = frames.timestamps;
  let lo = 0;
  let hi = ts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((ts[mid] as number) < t) lo = mid + 1;
    else hi = mid;
  }
  let best = lo;
  if (lo > 0 && Math.abs((ts[lo - 1] as number) - t) <= Math.abs((ts[lo] as number) - t)) best = lo - 1;
  const gap = Math.abs((ts[best] as number) - t);
  if (!(gap <= tolerance)) {
    const near = Array.from(ts.subarray(Math.max(0, best - 1), best + 2), (v) => v.toFixed(4)).join(', ');
    throw new SmolVLAError('ERR_SMOLVLA_IO',
      `${what}: no frame within ${tolerance.toFixed(4)} s of timestamp ${t.toFixed(4)} s (nearest decoded: ${near}; ${ts.length} frames decoded)`,
    );
  }
  return best;
}

/** Frame `i` as CHW float32 in [0, 1]. */
export function frameToChw(frames: DecodedFrames, i: number): SampleImage {
  const { width: w, height: h } = frames;
  const plane = w * h;
  const rgb = frames.rgb.subarray(i * plane * 3, (i + 1) * plane * 3);
  const data = new Float32Array(3 * plane);
  for (let p = 0; p < plane; p++) {
    data[p] = (rgb[3 * p] as number) / 255;
    data[plane + p] = (rgb[3 * p + 1] as number) / 255;
    data[2 * plane + p] = (rgb[3 * p + 2] as number) / 255;
  }
  return { data, shape: [3, h, w] };
}
