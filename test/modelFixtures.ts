/** Loading the model fixtures (test/fixtures/<config>/): the checkpoint plus its io.safetensors. */
import * as path from 'node:path';

import { SmolVLAModel, Tensor, type LoadReport, type Observation } from '../lib/index';
import { fixturesDir, loadFixture, type Fixture } from './helpers';

/** Slices `t` along axis `dim` at `index` (test-side; copies). */
export function select(t: Tensor, dim: number, index: number): Tensor {
  const shape = t.shape;
  const outer = shape.slice(0, dim).reduce((a, b) => a * b, 1);
  const inner = shape.slice(dim + 1).reduce((a, b) => a * b, 1);
  const n = shape[dim]!;
  const src = t.data();
  const out = new (src.constructor as new (len: number) => typeof src)(outer * inner);
  for (let o = 0; o < outer; o++) {
    (out as unknown as { set(a: ArrayLike<number | bigint>, off: number): void }).set(
      src.subarray((o * n + index) * inner, (o * n + index + 1) * inner) as unknown as ArrayLike<number>,
      o * inner,
    );
  }
  return Tensor.from(out, [...shape.slice(0, dim), ...shape.slice(dim + 1)], t.dtype);
}

export function observationOf(io: Fixture): Observation {
  const images = io.get('in.images');
  const masks = io.get('in.img_masks');
  const cams = images.shape[1]!;
  return {
    images: Array.from({ length: cams }, (_, c) => select(images, 1, c)),
    imgMasks: Array.from({ length: cams }, (_, c) => select(masks, 1, c)),
    langTokens: io.get('in.lang_tokens'),
    langMasks: io.get('in.lang_masks'),
    state: io.get('in.state'),
  };
}

export interface ModelFixture {
  model: SmolVLAModel;
  report: LoadReport;
  io: Fixture;
  obs: Observation;
}

export async function loadModelFixture(name: string): Promise<ModelFixture> {
  const dir = path.join(fixturesDir, name);
  const { model, report } = await SmolVLAModel.fromPretrained(dir);
  const io = await loadFixture(name, 'io.safetensors');
  return { model, report, io, obs: observationOf(io) };
}
