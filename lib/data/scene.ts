/**
 * A synthetic camera for demos and examples: a table-top scene of coloured blocks. Within a scene the blocks
 * jitter by a pixel and the sensor adds noise; a new scene rearranges and recolours them, so the
 * ground truth of "did the scene change" is known at every step.
 */
import { seededRandom as rng } from './random';
import type { RgbFrame } from '../policy/inputs';

/** A small bright target drawn over the scene, at fractions of the frame's width and height. */
export interface SceneTarget {
  x: number;
  y: number;
}

export interface SceneCamera {
  /** The frame of `scene` at `step` (deterministic), with an optional moving target. */
  frame(scene: number, step: number, target?: SceneTarget): RgbFrame;
}

export function sceneCamera(width = 64, height = 64, seed = 0): SceneCamera {
  return {
    frame(scene: number, step: number, target?: SceneTarget): RgbFrame {
      const layout = rng(seed * 7919 + scene * 104729 + 1);
      const noise = rng(seed * 31 + scene * 977 + step * 13 + 2);
      const data = new Uint8Array(width * height * 3);
      // Background: a table whose tone depends on the scene.
      const base = [80 + layout() * 120, 80 + layout() * 120, 80 + layout() * 120];
      for (let i = 0; i < width * height; i++) for (let c = 0; c < 3; c++) data[i * 3 + c] = base[c]!;
      const blocks = 3 + Math.floor(layout() * 3);
      for (let b = 0; b < blocks; b++) {
        const w = 8 + Math.floor(layout() * 14), h = 8 + Math.floor(layout() * 14);
        const x0 = Math.floor(layout() * (width - w)) + Math.round(noise() * 2 - 1);
        const y0 = Math.floor(layout() * (height - h)) + Math.round(noise() * 2 - 1);
        const colour = [layout() * 255, layout() * 255, layout() * 255];
        for (let y = Math.max(0, y0); y < Math.min(height, y0 + h); y++) {
          for (let x = Math.max(0, x0); x < Math.min(width, x0 + w); x++) {
            for (let c = 0; c < 3; c++) data[(y * width + x) * 3 + c] = colour[c]!;
          }
        }
      }
      if (target) {
        const cx = Math.round(target.x * (width - 1)), cy = Math.round(target.y * (height - 1));
        for (let y = Math.max(0, cy - 2); y < Math.min(height, cy + 2); y++) {
          for (let x = Math.max(0, cx - 2); x < Math.min(width, cx + 2); x++) data.fill(250, (y * width + x) * 3, (y * width + x) * 3 + 3);
        }
      }
      for (let i = 0; i < data.length; i++) data[i] = Math.max(0, Math.min(255, data[i]! + Math.round((noise() - 0.5) * 8)));
      return { data, width, height };
    },
  };
}
