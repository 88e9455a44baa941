/**
 * Seeded fuzz of the public API: random calls with random arguments (wrong types, NaN, Infinity,
 * 1e9, NUL bytes, disposed tensors, broken observations and robot frames) against the tiny model and
 * the policy's batch preprocessing (native, off the event loop). Every call returns
 * or throws an Error with an ERR_SMOLVLA_* code and a message; nothing aborts or hangs (a hang
 * fails the test by its time limit).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { KVCache, matmulThroughput, manualSeed, ops, readSafetensors, resolveDevice, SmolVLAModel, Tensor, writeSafetensors } from '../../lib/index';
import type { Preprocessor } from '../../lib/policy';
import { loadModelFixture, type ModelFixture } from '../modelFixtures';
import { tinySetup } from '../policy/fixtures';
import { FUZZ_SCALE, codeOf, int, pick, rng } from './random';

let fixture: ModelFixture;
let pre: Preprocessor;
let cwd: string;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smolvla-apifuzz-'));

beforeAll(async () => {
  fixture = await loadModelFixture('tiny_delta');
  pre = (await tinySetup()).pre;
  // Paths from the pool are relative too: anything a call writes lands in the temporary folder.
  cwd = process.cwd();
  process.chdir(dir);
});
afterAll(() => {
  process.chdir(cwd);
  fs.rmSync(dir, { recursive: true, force: true });
});

type Gen = (r: () => number) => unknown;

function pool(): Gen[] {
  const disposed = Tensor.fromNumbers([1, 2], [2]);
  disposed.dispose();
  const obs = fixture.obs;
  const tensors = () => [
    Tensor.from(new Float32Array(6).fill(0.5), [2, 3]),
    Tensor.from(new Float32Array(8).fill(0.25), [1, 2, 2, 2]),
    Tensor.fromInts([1, 2, 3, 4], [1, 4]),
    Tensor.fromBools([1, 1, 0, 1], [1, 4]),
    Tensor.from(new Float32Array([Number.NaN, Number.POSITIVE_INFINITY]), [2]),
    Tensor.from(new Float32Array(1), []),
    Tensor.from(new Float64Array(4), [4]),
    disposed,
  ];
  const numbers = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -1, 0, 1, 1.5, 2, 4, 1e9, 1e39, 2 ** 53, -0];
  const strings = ['cpu', 'cuda', '', 'a\0b', '/proc/x/y', 'out/model', 'float32', 'bfloat16', 'x'.repeat(300)];
  const broken = (r: () => number) => {
    const o: Record<string, unknown> = { ...obs };
    const key = pick(r, ['images', 'imgMasks', 'langTokens', 'langMasks', 'state']);
    o[key] = pick(r, [undefined, null, 3, [], [disposed], disposed, ...tensors().slice(0, 3)]);
    return o;
  };
  // One robot's observation (tiny_delta: cam0, state 5): each field valid 3 times in 4, else broken.
  const field = <T,>(r: () => number, valid: readonly T[], broken: readonly T[]): T => (r() < 0.75 ? pick(r, valid) : pick(r, broken));
  const entries = (r: () => number, valid: Array<Record<string, unknown>>, broken: Array<Record<string, unknown>>) => field(r, valid, broken);
  const frames: unknown[] = [
    { data: new Uint8Array(2 * 3 * 3), width: 3, height: 2 },
    { data: new Uint8Array(16), width: 2, height: 2, channels: 4 },
    { data: new Uint8ClampedArray(24), width: 2, height: 2, frames: 2 },
    { data: new Float32Array(12).fill(0.5), shape: [3, 2, 2] },
  ];
  const badFrames: unknown[] = [
    { data: new Uint8Array(5), width: 3, height: 2 },
    { data: new Uint8Array(12), width: 2, height: 2, channels: 5 },
    { data: new Uint8Array(12), width: 1e9, height: 2 },
    { data: Float32Array.from({ length: 12 }, (_, i) => (i === 5 ? Number.NaN : 0.5)), shape: [3, 2, 2] },
    { data: new Float32Array(12).fill(Number.NEGATIVE_INFINITY), shape: [3, 2, 2] },
    { data: new Float32Array(12).fill(255), shape: [3, 2, 2] },
    { data: new Float32Array(12), shape: [2, 2, 3] },
    { data: new Float64Array(12), shape: [3, 2, 2] },
    'frame',
    null,
  ];
  const robot = (r: () => number): Record<string, unknown> => ({
    'observation.images.cam0': field(r, frames, badFrames),
    'observation.state': field<unknown>(r, [[0, 1, 2, 3, 4], { data: new Float32Array(10), shape: [2, 5] }], [[0, Number.NaN, 2, 3, 4], [1e39, 0, 0, 0, 0], new Float32Array(5).fill(Infinity), [1, 2]]),
    ...entries(r, [{ 'observation.language.tokens': [1, 2] }, { task: 'pick up the cube' }], [{ 'observation.language.tokens': [1e9] }, { task: 3 }, {}]),
    ...entries(r, [{}, { action: new Float32Array(32) }, { 'observation.images.cam0_padding_mask': false }], [{ action: new Float32Array(32).fill(Number.NaN), action_is_pad: new Array(8).fill(0) }]),
  });
  return [
    () => undefined,
    () => null,
    (r) => pick(r, numbers),
    (r) => pick(r, strings),
    (r) => pick(r, [true, false, {}, [], [1, 2], ['a'], { a: 1 }, () => 0, Symbol('s'), 1n]),
    (r) => pick(r, tensors()),
    () => obs,
    broken,
    (r) => ({ noise: pick(r, tensors()), withGrad: pick(r, [true, 'yes']), numClsPrefix: pick(r, numbers), numClsSuffix: 1, chunkSize: pick(r, numbers), lambda: pick(r, numbers), gradNames: pick(r, [['x'], 'x', [1]]) }),
    () => new Map([['a', disposed]]),
    robot,
    (r) => [robot(r), robot(r)],
    () => Tensor.from(new Float32Array(2 * 8 * 6).fill(0.25), [2, 8, 6]),
    () => Tensor.from(new Float32Array(8 * 6).fill(Number.NaN), [1, 8, 6]),
  ];
}

type Target = [string, (a: unknown[]) => unknown];

function targets(model: SmolVLAModel): Target[] {
  const c = (f: (...args: never[]) => unknown) => (a: unknown[]) => f(...(a as never[]));
  return [
    ['ops.makeAtt2dMasks', c(ops.makeAtt2dMasks)],
    ['ops.makeAtt2dMasksWithCls', c(ops.makeAtt2dMasksWithCls)],
    ['ops.timeEmbedding', c(ops.timeEmbedding)],
    ['ops.applyRope', c(ops.applyRope)],
    ['ops.padVector', c(ops.padVector)],
    ['ops.resizeWithPad', c(ops.resizeWithPad)],
    ['ops.vicregLoss', c(ops.vicregLoss)],
    ['ops.clsSimilarity', c(ops.clsSimilarity)],
    ['Tensor.from', c(Tensor.from)],
    ['Tensor.fromNumbers', c(Tensor.fromNumbers)],
    ['manualSeed', c(manualSeed)],
    ['resolveDevice', c(resolveDevice)],
    ['matmulThroughput', c(matmulThroughput)],
    ['readSafetensors', c(readSafetensors)],
    ['writeSafetensors', c(writeSafetensors)],
    ['SmolVLAModel.fromPretrained', c(SmolVLAModel.fromPretrained)],
    ['model.prefix', (a) => model.prefix(a[0] as never)],
    ['model.sample', (a) => model.sample(a[0] as never, a[1] as never)],
    ['model.deltaActions', (a) => model.deltaActions(a[0] as never, a[1] as never)],
    ['model.deltaStep', (a) => model.deltaStep(a[0] as never, a[1] as never)],
    ['model.trace', (a) => model.trace(a[0] as never, a[1] as never)],
    ['model.forwardMain', (a) => model.forwardMain(a[0] as never, a[1] as never, a[2] as never)],
    ['model.forwardDelta', (a) => model.forwardDelta(a[0] as never, a[1] as never)],
    ['model.parameters', (a) => model.parameters(a[0] as never)],
    ['model.save', (a) => model.save(a[0] as never, a[1] as never, a[2] as never)],
    ['policy.prepare', (a) => pre.prepare(a[0] as never, a[1] as never)],
    ['policy.validate', (a) => pre.validate(a[0] as never)],
    ['policy.splitActions', (a) => pre.splitActions(a[0] as never)],
    ['policy.trainingBatch', (a) => pre.trainingBatch(a[0] as never)],
  ];
}

/** Frees what a successful call returned (tensors, caches, nested results). */
function release(value: unknown, depth = 0): void {
  if (depth > 3 || value === null || typeof value !== 'object') return;
  if (value instanceof Tensor || value instanceof KVCache) {
    value.dispose();
    return;
  }
  for (const v of value instanceof Map ? value.values() : Object.values(value)) release(v, depth + 1);
}

describe('public API fuzz', () => {
  const calls = 3000 * FUZZ_SCALE;
  it(`${calls} random calls: every error is coded and names what was wrong`, async () => {
    const seed = 1603;
    const r = rng(seed);
    const gens = pool();
    const all = targets(fixture.model);
    const outcomes = new Map<string, number>();
    const bad: string[] = [];
    for (let i = 0; i < calls; i++) {
      const [name, call] = pick(r, all);
      // Mostly plausible arguments (a valid observation, tensors), so calls get past the first check.
      const args = Array.from({ length: 1 + int(r, 4) }, () => pick(r, gens)(r));
      let outcome: string;
      try {
        release(await call(args));
        outcome = 'ok';
      } catch (err) {
        outcome = codeOf(err);
        if (!outcome.startsWith('ERR_SMOLVLA')) bad.push(`seed ${seed} case ${i} ${name}: ${outcome}`);
      }
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    }
    expect(bad.slice(0, 10)).toEqual([]);
    expect(outcomes.get('ERR_SMOLVLA_ARGUMENT')).toBeGreaterThan(calls / 4);
  });

  it('bounds numeric options instead of hanging: timeEmbedding 1e9, matmulThroughput Infinity', () => {
    const t = Tensor.fromNumbers([0.5], [1]);
    expect(() => ops.timeEmbedding(t, 1e9)).toThrow(expect.objectContaining({ code: 'ERR_SMOLVLA_ARGUMENT', message: 'dim must be an integer in [2, 65536], got 1000000000' }));
    expect(() => matmulThroughput(8, 8, 8, 'float32', Number.POSITIVE_INFINITY)).toThrow(expect.objectContaining({ code: 'ERR_SMOLVLA_ARGUMENT', message: 'seconds must be a finite number in [0, 60], got Infinity' }));
    expect(() => ops.timeEmbedding(undefined as never, 4)).toThrow(expect.objectContaining({ code: 'ERR_SMOLVLA_ARGUMENT', message: 'time must be a Tensor, got undefined' }));
  });

  it('fails fast on a save under /proc and on NUL bytes in paths', async () => {
    await expect(fixture.model.save('/proc/x')).rejects.toMatchObject({ code: 'ERR_SMOLVLA_IO', message: expect.stringContaining("/proc/x: cannot create the folder") });
    await expect(fixture.model.save('out\0/x')).rejects.toMatchObject({ code: 'ERR_SMOLVLA_ARGUMENT', message: expect.stringContaining('without NUL bytes') });
    await expect(SmolVLAModel.fromPretrained('a\0b')).rejects.toMatchObject({ code: 'ERR_SMOLVLA_ARGUMENT' });
  });
});
