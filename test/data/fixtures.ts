/** Small recordings for the dataset tests: distinct, exactly representable values and smooth images. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import type { WriteEpisode } from '../../lib/data/index';

export const WIDTH = 20;
export const HEIGHT = 16;
export const FPS = 10;
export const CAMERAS = ['observation.images.top', 'observation.images.wrist'];
export const LENGTHS = [10, 7, 9];
export const TASKS = ['pick up the cube', 'place the cube in the bin', 'pick up the cube'];
export const STATE_DIM = 3;
export const ACTION_DIM = 2;

/** Smooth content (a gradient and a moving bright square) that survives lossy coding. */
export function frameImage(episode: number, frame: number, camera: number): Uint8Array {
  const out = new Uint8Array(WIDTH * HEIGHT * 3);
  const sx = (3 * frame + 5 * episode) % (WIDTH - 6);
  const sy = (2 * frame + 3 * camera) % (HEIGHT - 6);
  for (let y = 0; y < HEIGHT; y++) {
    for (let x = 0; x < WIDTH; x++) {
      const p = 3 * (y * WIDTH + x);
      const inSquare = x >= sx && x < sx + 6 && y >= sy && y < sy + 6;
      out[p] = inSquare ? 230 : 40 + 6 * x + 30 * camera;
      out[p + 1] = inSquare ? 220 : 30 + 8 * y + 20 * episode;
      out[p + 2] = inSquare ? 60 : 120 + 4 * frame;
    }
  }
  return out;
}

export const stateOf = (e: number, k: number): Float32Array => Float32Array.from({ length: STATE_DIM }, (_, j) => Math.fround(e * 100 + k + 0.25 * j + 0.1));
export const actionOf = (e: number, k: number): Float32Array => Float32Array.from({ length: ACTION_DIM }, (_, j) => Math.fround(-(e * 100 + k) - 0.5 * j - 0.3));

export function recording(): WriteEpisode[] {
  return LENGTHS.map((n, e) => ({
    task: TASKS[e] as string,
    frames: Array.from({ length: n }, (_, k) => ({
      images: Object.fromEntries(CAMERAS.map((key, c) => [key, frameImage(e, k, c)])),
      state: stateOf(e, k),
      action: actionOf(e, k),
    })),
  }));
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `smolvla-${prefix}-`));
}

/** CHW float [0, 1] of an HWC uint8 image. */
export function toChw(hwc: Uint8Array, width: number, height: number): Float32Array {
  const plane = width * height;
  const out = new Float32Array(3 * plane);
  for (let p = 0; p < plane; p++) for (let c = 0; c < 3; c++) out[c * plane + p] = (hwc[3 * p + c] as number) / 255;
  return out;
}

export function meanAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs((a[i] as number) - (b[i] as number));
  return s / a.length;
}
