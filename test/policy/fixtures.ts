/** Shared inputs of the policy tests: the tiny_delta checkpoint, its statistics and the policy fixtures. */
import * as path from 'node:path';

import { readConfig, Tensor, type SmolVLAConfig } from '../../lib/index';
import { Normalizer, Preprocessor, readCheckpointStats, VlmTokenizer, type RgbFrame, type RobotObservation } from '../../lib/policy';
import { fixturesDir, type Fixture } from '../helpers';

export const TINY_DELTA = path.join(fixturesDir, 'tiny_delta');
export const TOKENIZER_JSON = path.join(fixturesDir, 'tokenizer', 'tokenizer.json');

/** A uint8 HWC frame stored as I32 (H, W, 3) or (T, H, W, 3) -> RgbFrame. */
export function frameOf(t: Tensor): RgbFrame {
  const shape = t.shape;
  const [h, w] = shape.slice(-3) as [number, number];
  const frame: RgbFrame = { data: Uint8Array.from(t.data() as Int32Array), width: w, height: h };
  if (shape.length === 4) frame.frames = shape[0]!;
  return frame;
}

/** The last frame of an RgbFrame as CHW float32 in [0, 1] (test-side conversion, float32 v / 255). */
export function chwOf(frame: RgbFrame): Float32Array {
  const plane = frame.width * frame.height;
  const start = ((frame.frames ?? 1) - 1) * plane * 3;
  const out = new Float32Array(3 * plane);
  for (let p = 0; p < plane; p++) for (let c = 0; c < 3; c++) out[c * plane + p] = Math.fround(frame.data[start + p * 3 + c]!) / 255;
  return out;
}

export function rowsOf(t: Tensor): Float32Array[] {
  const [b] = t.shape as [number];
  const d = t.toFloat32();
  const n = d.length / b;
  return Array.from({ length: b }, (_, i) => d.slice(i * n, (i + 1) * n));
}

export interface TinySetup {
  config: SmolVLAConfig;
  normalizer: Normalizer;
  tokenizer: VlmTokenizer;
  pre: Preprocessor;
}

/** tiny_delta's config (with overrides), its checkpoint statistics and the fixture tokenizer. */
export async function tinySetup(overrides: Partial<SmolVLAConfig> = {}): Promise<TinySetup> {
  const config = { ...(await readConfig(TINY_DELTA)), ...overrides };
  const { stats } = await readCheckpointStats(TINY_DELTA, config);
  const normalizer = new Normalizer(config, stats);
  const tokenizer = await VlmTokenizer.fromFile(TOKENIZER_JSON);
  return { config, normalizer, tokenizer, pre: new Preprocessor(config, normalizer, tokenizer) };
}

/** The robots' observations of call k of policy/sequence.safetensors (ready tokens, frames, states). */
export function sequenceCall(fx: Fixture, k: number): RobotObservation[] {
  const tokens = rowsOf(fx.get('in.lang_tokens').to('float32'));
  const masks = rowsOf(fx.get('in.lang_masks').to('float32'));
  const states = rowsOf(fx.get(`in.call${k}.state`));
  return [0, 1].map((r) => {
    // ready tokens of the valid length only: the policy pads the ragged rows again
    const n = masks[r]!.reduce((a, b) => a + b, 0);
    return {
      'observation.images.cam0': frameOf(fx.get(`in.call${k}.r${r}.frame`)),
      'observation.state': states[r]!,
      'observation.language.tokens': Array.from(tokens[r]!.subarray(0, n)),
    };
  });
}
