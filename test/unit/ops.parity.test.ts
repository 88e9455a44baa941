/**
 * Parity of the standalone operations with the PyTorch reference (test/reference, fixtures in
 * test/fixtures/ops). Tolerances: float32 relative error <= 1e-5 (single operations);
 * masks exact.
 */
import { ops, Tensor } from '../../lib/index';
import { expectClose, expectEqual, loadFixture } from '../helpers';

const OP_TOL = 1e-5;

describe('make_att_2d_masks (parity)', () => {
  it('matches every fixture case exactly', async () => {
    const f = await loadFixture('ops', 'masks.safetensors');
    expect(f.caseCount()).toBeGreaterThanOrEqual(4);
    for (let k = 0; k < f.caseCount(); k++) {
      expectEqual(ops.makeAtt2dMasks(f.get(`case${k}.pad`), f.get(`case${k}.marks`)), f.get(`case${k}.out`), `case${k}`);
    }
  });
});

describe('make_att_2d_masks_with_cls (departure: docs/DEPARTURES.md)', () => {
  it('matches every fixture case exactly', async () => {
    const f = await loadFixture('ops', 'masks_cls.safetensors');
    expect(f.caseCount()).toBeGreaterThanOrEqual(4);
    for (let k = 0; k < f.caseCount(); k++) {
      const out = ops.makeAtt2dMasksWithCls(f.get(`case${k}.pad`), f.get(`case${k}.marks`), {
        numClsPrefix: f.int(`case${k}.num_cls_prefix`),
        numClsSuffix: f.int(`case${k}.num_cls_suffix`),
        numActionContext: f.int(`case${k}.num_action_context`),
        chunkSize: f.int(`case${k}.chunk_size`),
      });
      expectEqual(out, f.get(`case${k}.out`), `case${k}`);
    }
  });
});

describe('sinusoidal time embedding (parity)', () => {
  it(`matches within ${OP_TOL}`, async () => {
    const f = await loadFixture('ops', 'time_embedding.safetensors');
    for (let k = 0; k < f.caseCount(); k++) {
      const out = ops.timeEmbedding(
        f.get(`case${k}.time`),
        f.int(`case${k}.dim`),
        f.float(`case${k}.min_period`),
        f.float(`case${k}.max_period`),
      );
      expectClose(out, f.get(`case${k}.out`), OP_TOL, `case${k}`);
    }
  });
});

describe('SmolVLA RoPE (parity)', () => {
  it(`matches within ${OP_TOL}, negative and large positions included`, async () => {
    const f = await loadFixture('ops', 'rope.safetensors');
    for (let k = 0; k < f.caseCount(); k++) {
      expectClose(ops.applyRope(f.get(`case${k}.x`), f.get(`case${k}.pos`)), f.get(`case${k}.out`), OP_TOL, `case${k}`);
    }
  });
});

describe('pad_vector (parity)', () => {
  it('matches exactly', async () => {
    const f = await loadFixture('ops', 'pad_vector.safetensors');
    for (let k = 0; k < f.caseCount(); k++) {
      expectClose(ops.padVector(f.get(`case${k}.x`), f.int(`case${k}.new_dim`)), f.get(`case${k}.out`), 0, `case${k}`);
    }
  });
});

describe('resize_with_pad (parity)', () => {
  it(`matches within ${OP_TOL}`, async () => {
    const f = await loadFixture('ops', 'resize_with_pad.safetensors');
    for (let k = 0; k < f.caseCount(); k++) {
      const out = ops.resizeWithPad(f.get(`case${k}.img`), f.int(`case${k}.width`), f.int(`case${k}.height`), 0);
      expectClose(out, f.get(`case${k}.out`), OP_TOL, `case${k}`);
    }
  });
});

describe('VICReg (parity)', () => {
  it(`matches loss, each term and the gradients within ${OP_TOL}`, async () => {
    const f = await loadFixture('ops', 'vicreg.safetensors');
    for (let k = 0; k < f.caseCount(); k++) {
      const r = ops.vicregLoss(f.get(`case${k}.z1`), f.get(`case${k}.z2`), {
        lambda: f.float(`case${k}.lambda`),
        mu: f.float(`case${k}.mu`),
        nu: f.float(`case${k}.nu`),
        gamma: f.float(`case${k}.gamma`),
        withGrad: true,
      });
      expectClose(r.loss, f.get(`case${k}.loss`), OP_TOL, `case${k}.loss`);
      expectClose(r.invariance, f.get(`case${k}.invariance`), OP_TOL, `case${k}.invariance`);
      expectClose(r.variance, f.get(`case${k}.variance`), OP_TOL, `case${k}.variance`);
      expectClose(r.covariance, f.get(`case${k}.covariance`), OP_TOL, `case${k}.covariance`);
      expectClose(r.gradZ1 as Tensor, f.get(`case${k}.grad_z1`), OP_TOL, `case${k}.grad_z1`);
      expectClose(r.gradZ2 as Tensor, f.get(`case${k}.grad_z2`), OP_TOL, `case${k}.grad_z2`);
    }
  });
});

describe('CLS cosine similarity (parity)', () => {
  it(`matches per sample and batch mean within ${OP_TOL}`, async () => {
    const f = await loadFixture('ops', 'cls_similarity.safetensors');
    for (let k = 0; k < f.caseCount(); k++) {
      const s = ops.clsSimilarity(f.get(`case${k}.cur`), f.get(`case${k}.prev`));
      expectClose(Tensor.from(s.perSample, [s.perSample.length]), f.get(`case${k}.per_sample`), OP_TOL, `case${k}`);
      expect(s.mean).toBeCloseTo(f.float(`case${k}.mean`), 6);
    }
  });
});
