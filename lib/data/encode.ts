/** Encoding frames for the dataset writer: MP4 through ffmpeg, PNG in-process. */
import { mkdir } from 'node:fs/promises';
import * as path from 'node:path';
import * as zlib from 'node:zlib';

import { hasEncoder, runFfmpeg } from './ffmpeg';
import { SmolVLAError } from '../errors';

export interface EncodedVideo {
  /** Codec name as LeRobot records it in `features[…].info["video.codec"]`. */
  codec: string;
  pixFmt: string;
}

/**
 * Encodes HWC rgb24 `frames` of `width`x`height` at `fps` into `file`: H.264 (libx264) when ffmpeg has
 * it, else MPEG-4 part 2. Frame k gets presentation time k/fps.
 */
export async function encodeVideo(file: string, frames: Uint8Array[], width: number, height: number, fps: number): Promise<EncodedVideo> {
  const odd = width % 2 === 1 || height % 2 === 1;
  let codecArgs: string[];
  let result: EncodedVideo;
  if (await hasEncoder('libx264')) {
    // 4:2:0 needs even sizes; odd ones keep full chroma.
    const pixFmt = odd ? 'yuv444p' : 'yuv420p';
    codecArgs = ['-c:v', 'libx264', '-preset', 'veryfast', '-crf', '12', '-pix_fmt', pixFmt];
    result = { codec: 'h264', pixFmt };
  } else {
    if (odd) throw new SmolVLAError('ERR_SMOLVLA_IO', `encoding ${file}: MPEG-4 needs even image sizes, got ${width}x${height} (install an ffmpeg with libx264)`);
    codecArgs = ['-c:v', 'mpeg4', '-q:v', '2', '-pix_fmt', 'yuv420p'];
    result = { codec: 'mpeg4', pixFmt: 'yuv420p' };
  }
  await mkdir(path.dirname(file), { recursive: true });
  const input = Buffer.concat(frames);
  const args = ['-y', '-loglevel', 'error', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${width}x${height}`, '-r', String(fps), '-i', 'pipe:0', ...codecArgs, '-an', file];
  await runFfmpeg(args, `encoding ${file}`, input);
  return result;
}

function pngChunk(type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'ascii');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(Buffer.concat([head.subarray(4), data])) >>> 0, 0);
  return Buffer.concat([head, data, crc]);
}

/** A lossless 8-bit RGB PNG of an HWC rgb24 image (what LeRobot embeds for `image` features). */
export function encodePng(rgb: Uint8Array, width: number, height: number): Uint8Array {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8); // bit depth 8, colour type RGB, default compression/filter/interlace
  const stride = width * 3;
  const scanlines = Buffer.alloc((stride + 1) * height);
  for (let y = 0; y < height; y++) scanlines.set(rgb.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', header),
    pngChunk('IDAT', zlib.deflateSync(scanlines)),
    pngChunk('IEND', new Uint8Array(0)),
  ]);
}
