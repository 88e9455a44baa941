/** Property tests (fast-check) of the operations' shapes, invariants and edge cases. */
import fc from 'fast-check';

import { ops, Tensor } from '../../lib/index';

const boolMatrix = (b: number, n: number) => fc.array(fc.boolean(), { minLength: b * n, maxLength: b * n });

describe('mask properties', () => {
  it('is (B, N, N); padded rows and columns are empty; valid tokens see themselves', () => {
    const sample = fc
      .tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 9 }))
      .chain(([b, n]) => fc.tuple(fc.constant(b), fc.constant(n), boolMatrix(b, n), boolMatrix(b, n)));
    fc.assert(
      fc.property(sample, ([b, n, padValues, markValues]) => {
        const mask = ops.makeAtt2dMasks(Tensor.fromBools(padValues, [b, n]), Tensor.fromBools(markValues, [b, n]));
        expect(mask.shape).toEqual([b, n, n]);
        const m = mask.toNumbers();
        for (let s = 0; s < b; s++) {
          for (let i = 0; i < n; i++) {
            const valid = padValues[s * n + i]!;
            expect(m[s * n * n + i * n + i]).toBe(valid ? 1 : 0);
            for (let j = 0; j < n; j++) {
              if (!valid || !padValues[s * n + j]) expect(m[s * n * n + i * n + j]).toBe(0);
            }
          }
        }
      }),
      { numRuns: 60 },
    );
  });

  it('an all-padding row gives an all-false mask', () => {
    const mask = ops.makeAtt2dMasks(Tensor.fromBools([0, 0, 0], [1, 3]), Tensor.fromBools([1, 0, 1], [1, 3]));
    expect(mask.toNumbers().every((v) => v === 0)).toBe(true);
  });
});

describe('VICReg properties', () => {
  it('is finite, non-negative for identical inputs invariance is 0, and shapes follow (B, T, D)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 6 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 5 }), (b, t, d) => {
        const values = Float32Array.from({ length: b * t * d }, (_, i) => Math.sin(i * 1.7) * 2);
        const z = Tensor.from(values, [b, t, d]);
        const r = ops.vicregLoss(z, z);
        expect(r.loss.shape).toEqual([b, t]);
        expect(r.variance.shape).toEqual([t]);
        expect(r.covariance.shape).toEqual([t]);
        expect(r.invariance.toNumbers().every((v) => v === 0)).toBe(true);
        expect(r.loss.toNumbers().every((v) => Number.isFinite(v) && v >= 0)).toBe(true);
      }),
      { numRuns: 40 },
    );
  });
});

describe('preprocessing properties', () => {
  it('resizeWithPad always returns (B, C, height, width)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 4, max: 32 }),
        fc.integer({ min: 4, max: 32 }),
        (h, w, width, height) => {
          const ratio = Math.max(w / width, h / height);
          fc.pre(Math.trunc(h / ratio) > 0 && Math.trunc(w / ratio) > 0);
          const out = ops.resizeWithPad(Tensor.from(new Float32Array(3 * h * w).fill(0.5), [1, 3, h, w]), width, height);
          expect(out.shape).toEqual([1, 3, height, width]);
        },
      ),
      { numRuns: 50 },
    );
  });

  it('padVector keeps the values and zero-fills', () => {
    fc.assert(
      fc.property(fc.array(fc.float({ noNaN: true, noDefaultInfinity: true }), { minLength: 1, maxLength: 8 }), fc.integer({ min: 0, max: 5 }), (v, extra) => {
        const out = ops.padVector(Tensor.from(Float32Array.from(v), [1, v.length]), v.length + extra).toNumbers();
        expect(out.slice(0, v.length)).toEqual(Array.from(Float32Array.from(v)));
        expect(out.slice(v.length).every((x) => x === 0)).toBe(true);
      }),
    );
  });

  it('time embedding rows have sin^2 + cos^2 = 1', () => {
    fc.assert(
      fc.property(fc.float({ min: 0, max: 1, noNaN: true }), (t) => {
        const e = ops.timeEmbedding(Tensor.fromNumbers([t], [1]), 8).toNumbers();
        for (let i = 0; i < 4; i++) expect(e[i]! ** 2 + e[i + 4]! ** 2).toBeCloseTo(1, 5);
      }),
      { numRuns: 30 },
    );
  });
});
