/** The Tensor bridge: round trips, dtypes, zero-copy reads, disposal, devices and threads. */
import { buildInfo, getNumThreads, manualSeed, resolveDevice, setNumThreads, Tensor, cudaDeviceCount } from '../../lib/index';

describe('Tensor', () => {
  it('round-trips every dtype through native memory', () => {
    const cases: Array<[Tensor, string]> = [
      [Tensor.from(new Float32Array([1.5, -2, 3, 4, 5, 6]), [2, 3]), 'float32'],
      [Tensor.from(new Float64Array([1e-300, 2]), [2]), 'float64'],
      [Tensor.from(new BigInt64Array([1n, -(2n ** 40n)]), [2]), 'int64'],
      [Tensor.from(new Int32Array([7, -8]), [1, 2]), 'int32'],
      [Tensor.from(new Uint8Array([0, 255]), [2]), 'uint8'],
      [Tensor.fromBools([true, false, true], [3]), 'bool'],
    ];
    for (const [t, dtype] of cases) {
      expect(t.dtype).toBe(dtype);
      expect(t.device).toBe('cpu');
    }
    expect(Array.from(cases[0]![0].data() as Float32Array)).toEqual([1.5, -2, 3, 4, 5, 6]);
    expect(cases[0]![0].shape).toEqual([2, 3]);
    expect(Array.from(cases[2]![0].data() as BigInt64Array)).toEqual([1n, -(2n ** 40n)]);
    expect(cases[5]![0].toNumbers()).toEqual([1, 0, 1]);
  });

  it('copies input data (later JS writes do not reach the tensor)', () => {
    const src = new Float32Array([1, 2, 3]);
    const t = Tensor.from(src, [3]);
    src[0] = 99;
    expect(t.toNumbers()).toEqual([1, 2, 3]);
  });

  it('converts bfloat16 and float16 via to()', () => {
    const t = Tensor.fromNumbers([1, 0.5, -2], [3]);
    const bf = t.to('bfloat16');
    expect(bf.dtype).toBe('bfloat16');
    expect(bf.data()).toBeInstanceOf(Uint16Array);
    expect(Array.from(bf.toFloat32())).toEqual([1, 0.5, -2]);
    expect(Array.from(t.to('float16').toFloat32())).toEqual([1, 0.5, -2]);
  });

  it('keeps a data() view valid after dispose()', () => {
    const t = Tensor.fromNumbers([4, 5], [2]);
    const view = t.data() as Float32Array;
    t.dispose();
    t.dispose();
    expect(t.disposed).toBe(true);
    expect(Array.from(view)).toEqual([4, 5]);
  });

  it('rejects use after dispose with a readable Error', () => {
    const t = Tensor.fromNumbers([1], [1]);
    t.dispose();
    expect(() => t.shape).toThrow(/disposed Tensor/);
  });

  it('rejects shape / byte-length mismatches naming the shape', () => {
    expect(() => Tensor.from(new Float32Array(5), [2, 3])).toThrow(/data must be 24 bytes for shape \[2, 3\] of float32, got a Float32Array of length 5/);
    expect(() => Tensor.from(new Float32Array(1), [-1])).toThrow(/non-negative integer/);
    expect(() => Tensor.from(new Uint16Array(1), [1])).toThrow(/dtype must be given for a Uint16Array/);
  });

  it('handles empty tensors', () => {
    const t = Tensor.from(new Float32Array(0), [0, 3]);
    expect(t.shape).toEqual([0, 3]);
    expect(t.toNumbers()).toEqual([]);
  });

  it('frees native memory under GC pressure without explicit dispose', () => {
    // 200 x 4 MB allocations would exhaust nothing only if finalisers run; this checks they do not crash.
    for (let i = 0; i < 200; i++) Tensor.from(new Float32Array(1 << 20), [1 << 20]);
    expect(true).toBe(true);
  });
});

describe('runtime', () => {
  it('sets and reads the thread count, and rejects nonsense', () => {
    const before = getNumThreads();
    setNumThreads(2);
    expect(getNumThreads()).toBe(2);
    setNumThreads(before);
    expect(() => setNumThreads(0)).toThrow(/threads must be an integer in \[1, 1024\], got 0/);
    expect(() => setNumThreads(1.5)).toThrow(/threads must be an integer/);
  });

  it('resolves devices and explains missing CUDA', () => {
    expect(resolveDevice('cpu')).toBe('cpu');
    if (cudaDeviceCount() === 0) {
      expect(() => resolveDevice('cuda')).toThrow(/CUDA was requested \('cuda'\)/);
      expect(() => Tensor.fromNumbers([1], [1]).to('float32', 'cuda:0')).toThrow(/argument 'device'/);
    }
    expect(() => resolveDevice('tpu')).toThrow(/argument 'device'/);
  });

  it('reports what it was built with', () => {
    const info = buildInfo();
    expect(info.torchVersion).toMatch(/^\d+\.\d+/);
    expect(info.torchSource.length).toBeGreaterThan(0);
    manualSeed(0);
  });
});
