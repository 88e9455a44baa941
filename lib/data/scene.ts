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

/** One block of a scene: its top-left corner and size in pixels (before the per-frame jitter), RGB in [0, 255]. */
export interface SceneBlock {
  x: number;
  y: number;
  width: number;
  height: number;
  colour: [number, number, number];
}

/** What a scene shows: the table's tone and the blocks on it. */
export interface SceneLayout {
  background: [number, number, number];
  blocks: SceneBlock[];
}

export interface SceneCamera {
  /** The frame of `scene` at `step` (deterministic), with an optional moving target. */
  frame(scene: number, step: number, target?: SceneTarget): RgbFrame;
  /** The layout `frame` draws for `scene`. */
  layout(scene: number): SceneLayout;
}

/**
 * The simulator's moving target at `tick`, as fractions of the frame: a slow Lissajous path over the
 * middle 80 % of the frame (one shared path, so a policy trained on it sees what the demo shows).
 */
export function sceneTarget(tick: number): SceneTarget {
  return { x: 0.5 + 0.4 * Math.sin(tick / 15), y: 0.5 + 0.4 * Math.cos(tick / 23) };
}

export function sceneCamera(width = 64, height = 64, seed = 0): SceneCamera {
  const layout = (scene: number): SceneLayout => {
    const draw = rng(seed * 7919 + scene * 104729 + 1);
    // Background: a table whose tone depends on the scene.
    const background: [number, number, number] = [80 + draw() * 120, 80 + draw() * 120, 80 + draw() * 120];
    const count = 3 + Math.floor(draw() * 3);
    const blocks: SceneBlock[] = [];
    for (let b = 0; b < count; b++) {
      const w = 8 + Math.floor(draw() * 14), h = 8 + Math.floor(draw() * 14);
      const x = Math.floor(draw() * (width - w));
      const y = Math.floor(draw() * (height - h));
      blocks.push({ x, y, width: w, height: h, colour: [draw() * 255, draw() * 255, draw() * 255] });
    }
    return { background, blocks };
  };
  return {
    layout,
    frame(scene: number, step: number, target?: SceneTarget): RgbFrame {
      const { background, blocks } = layout(scene);
      const noise = rng(seed * 31 + scene * 977 + step * 13 + 2);
      const data = new Uint8Array(width * height * 3);
      for (let i = 0; i < width * height; i++) for (let c = 0; c < 3; c++) data[i * 3 + c] = background[c]!;
      for (const block of blocks) {
        const x0 = block.x + Math.round(noise() * 2 - 1);
        const y0 = block.y + Math.round(noise() * 2 - 1);
        for (let y = Math.max(0, y0); y < Math.min(height, y0 + block.height); y++) {
          for (let x = Math.max(0, x0); x < Math.min(width, x0 + block.width); x++) {
            for (let c = 0; c < 3; c++) data[(y * width + x) * 3 + c] = block.colour[c]!;
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
