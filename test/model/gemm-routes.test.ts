/**
 * Every CPU GEMM route the model may take (libtorch's linear and matmul, oneDNN reading the weight in
 * place or a blocked copy) against the PyTorch reference: the whole tiny model's trace within the
 * float32 parity tolerance 1e-4 on each route, so the route the load-time probe picks is checked
 * whichever it is. Route choice, pinning and errors through the public API.
 */
import { gemmRoutes, GEMM_ROUTES, matmulThroughput, setGemmRoute } from '../../lib/index';
import { expectClose } from '../helpers';
import { loadModelFixture, type ModelFixture } from '../modelFixtures';

const TOL = 1e-4;
const available = gemmRoutes().available;

describe('CPU GEMM routes', () => {
  let f: ModelFixture;
  beforeAll(async () => {
    f = await loadModelFixture('tiny_fewer');
  });
  afterAll(() => {
    setGemmRoute('auto');
    f.model.dispose();
  });

  it('offers libtorch routes everywhere and oneDNN where its 2.x library is present', () => {
    expect(available).toEqual(expect.arrayContaining(['aten-linear', 'aten-matmul']));
    for (const r of available) expect(GEMM_ROUTES).toContain(r);
    // Debian's libtorch loads libdnnl.so.2, and setup installs its header: CI must exercise oneDNN.
    if (process.env.CI_EXPECT_ONEDNN === '1') expect(available).toContain('onednn-packed');
  });

  it.each(GEMM_ROUTES.filter((r) => available.includes(r)))(`%s: the trace matches the reference within ${TOL}`, async (route) => {
    setGemmRoute(route);
    const trace = await f.model.trace(f.obs, f.io.get('in.noise'));
    for (const key of ['vision.0', 'prefix_out', 'velocity.0', 'actions']) {
      expectClose(trace[key]!, f.io.get(`out.${key}`), TOL, `${route} ${key}`);
    }
    expect(gemmRoutes().report).toContain(route);
  });

  it(`the lean plan (in place but in the denoising passes, which keep packed copies) matches the reference within ${TOL}`, async () => {
    if (!available.includes('onednn-packed')) {
      expect(() => setGemmRoute('lean')).toThrow(/lean/);
      return;
    }
    setGemmRoute('lean');
    const trace = await f.model.trace(f.obs, f.io.get('in.noise'));
    for (const key of ['vision.0', 'prefix_out', 'velocity.0', 'actions']) {
      expectClose(trace[key]!, f.io.get(`out.${key}`), TOL, `lean ${key}`);
    }
    expect(gemmRoutes().report).toContain('lean (oneDNN in place; packed copies for the action expert');
  });

  it('the probe picks a route for each dtype and says so', async () => {
    setGemmRoute('auto');
    await f.model.trace(f.obs, f.io.get('in.noise'));
    expect(gemmRoutes().report).toMatch(/float32: [a-z-]+ \(prefix\), [a-z-]+ \(decode\)/);
  });

  it('measures every available route, and refuses unknown ones naming the argument', () => {
    for (const r of available) expect(matmulThroughput(64, 64, 64, 'float32', 0, 'cpu', r)).toBeGreaterThan(0);
    expect(() => setGemmRoute('blas' as never)).toThrow(/route/);
    expect(() => matmulThroughput(8, 8, 8, 'float32', 0, 'cpu', 'fast' as never)).toThrow(/route/);
  });
});
