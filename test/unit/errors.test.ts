/**
 * Bad calls from TypeScript become Errors that name the argument and the expectation; the process
 * lives on. A child process double-checks that nothing aborts (a native abort would kill jest too).
 */
import { spawnSync } from 'node:child_process';
import { ops, Tensor } from '../../lib/index';
import { native, packageRoot } from '../../lib/native';

describe('native errors are JS Errors', () => {
  const f = (n: number, shape: number[]) => Tensor.from(new Float32Array(n), shape);

  it('names the argument, the expected shape/dtype and what was received', () => {
    const pad = Tensor.fromBools([1, 1, 0], [1, 3]);
    expect(() => ops.makeAtt2dMasks(f(3, [1, 3]), pad)).toThrow(
      "argument 'pad': expected a bool tensor of shape (B, N), got float32 (1, 3) on cpu",
    );
    expect(() => ops.makeAtt2dMasks(pad, Tensor.fromBools([1, 1], [1, 2]))).toThrow(/argument 'marks'/);
    expect(() => ops.applyRope(f(8, [2, 4]), Tensor.fromInts([0, 1], [1, 2]))).toThrow(
      /argument 'x': expected a floating tensor of shape \(B, L, H, d\), got float32 \(2, 4\)/,
    );
    expect(() => ops.padVector(f(6, [1, 6]), 4)).toThrow(/argument 'vector': expected a last axis of at most new_dim = 4/);
    expect(() => ops.resizeWithPad(f(12, [1, 3, 2, 2]), 0, 4)).toThrow(/width must be an integer in \[1, 65536\], got 0/);
    expect(() => ops.timeEmbedding(f(2, [2]), 7)).toThrow(/dim must be even \(sin and cos halves\), got 7/);
  });

  it('refuses VICReg on a batch of one (the seeds FAQ NaN case)', () => {
    expect(() => ops.vicregLoss(f(8, [1, 2, 4]), f(8, [1, 2, 4]))).toThrow(/at least 2 samples.*got batch size 1/);
  });

  it('says to reset() when the CLS batch size changes', () => {
    expect(() => ops.clsSimilarity(f(16, [2, 2, 4]), f(8, [1, 2, 4]))).toThrow(/reset\(\)/);
  });

  it('tags errors with a code', () => {
    try {
      ops.padVector(f(6, [1, 6]), 4);
      throw new Error('no error');
    } catch (err) {
      expect((err as NodeJS.ErrnoException).code).toBe('ERR_SMOLVLA_ARGUMENT');
    }
  });

  it('turns wrong JS types into Errors, not crashes', () => {
    const bad = native as unknown as Record<string, (...a: unknown[]) => unknown>;
    expect(() => bad.makeAtt2dMasks!({}, 3)).toThrow(/argument 'pad': expected a Tensor/);
    expect(() => bad.applyRope!()).toThrow(/argument 'x'/);
    expect(() => bad.tensorFromBuffer!('nope', [1], 'float32')).toThrow(/argument 'data'/);
    expect(() => bad.tensorFromBuffer!(new Float32Array(1), [1], 'complex')).toThrow(/argument 'dtype'/);
    expect(() => new (native.NativeTensor as unknown as new () => unknown)()).toThrow(/created by the library/);
  });

  it('keeps a separate process alive after a burst of bad calls', () => {
    // Plain JS against the raw addon, so the child needs no TypeScript toolchain.
    const script = `
      const addon = require(${JSON.stringify(packageRoot)} + '/scripts/load-addon.js').loadAddon(${JSON.stringify(packageRoot)}).addon;
      const t = (n, shape) => addon.tensorFromBuffer(new Float32Array(n), shape, 'float32');
      let errors = 0;
      for (let i = 0; i < 50; i++) {
        try { addon.vicregLoss(t(1, [1, 1, 1]), t(1, [1, 1, 1]), 25, 25, 1, 1, 1e-4, true); } catch { errors++; }
        try { addon.makeAtt2dMasks(t(1, [1]), t(1, [1])); } catch { errors++; }
        try { addon.readSafetensors(42); } catch { errors++; }
      }
      console.log('alive', errors);
    `;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', cwd: packageRoot });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('alive 150');
    expect(r.status).toBe(0);
  });
});
