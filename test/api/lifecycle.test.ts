/**
 * Resource lifecycle of the public objects: dispose(), `using` (Symbol.dispose) and `await using`
 * (Symbol.asyncDispose), native bytes reported while held, ERR_SMOLVLA_DISPOSED after disposal.
 */
import * as path from 'node:path';

import { PolicyHttpServer, PolicyServer, SmolVLAModel, SmolVLAPolicy, Tensor, type KVCache } from '../../lib/index';
import { fixturesDir } from '../helpers';
import { loadModelFixture, type ModelFixture } from '../modelFixtures';

const disposedCode = expect.objectContaining({ code: 'ERR_SMOLVLA_DISPOSED' });

let f: ModelFixture;
beforeAll(async () => {
  f = await loadModelFixture('tiny_delta');
});

describe('SmolVLAModel', () => {
  it('reports its native bytes, frees them on dispose() and refuses later calls', async () => {
    const { model } = await SmolVLAModel.fromPretrained(path.join(fixturesDir, 'tiny_delta'));
    const info = await model.info();
    expect(info.bytes).toBeGreaterThan(0);
    expect(model.bytes).toBe(info.bytes);
    model.dispose();
    expect(model.disposed).toBe(true);
    expect(model.bytes).toBe(0);
    await expect(model.sample(f.obs)).rejects.toEqual(disposedCode);
    await expect(model.info()).rejects.toEqual(disposedCode);
    model.dispose(); // idempotent
  });

  it('is disposed at the end of a `using` scope', async () => {
    let escaped: SmolVLAModel;
    {
      using model = await SmolVLAModel.create(f.model.config, { seed: 1 });
      escaped = model;
      expect(model.disposed).toBe(false);
    }
    expect(escaped.disposed).toBe(true);
  });

  it('lets work already running finish when disposed mid-call', async () => {
    const { model } = await SmolVLAModel.fromPretrained(path.join(fixturesDir, 'tiny_delta'));
    const running = model.sample(f.obs);
    model.dispose();
    const { actions, cache } = await running;
    expect(actions.shape).toEqual([4, 8, 6]);
    cache?.dispose();
  });

  it('reports bytes in the new dtype after to()', async () => {
    using model = await SmolVLAModel.create(f.model.config, { seed: 1 });
    const before = model.bytes;
    await model.to('bfloat16');
    expect(model.bytes).toBeLessThan(before);
    expect(model.bytes).toBe((await model.info()).bytes);
  });
});

describe('KVCache and Tensor', () => {
  it('free their native memory with `using`', async () => {
    let cache: KVCache;
    let t: Tensor;
    {
      using c = await f.model.prefix(f.obs);
      using x = Tensor.fromNumbers([1, 2, 3], [3]);
      cache = c;
      t = x;
      expect(c.bytes).toBeGreaterThan(0);
    }
    expect(cache.disposed).toBe(true);
    expect(cache.bytes).toBe(0);
    expect(t.disposed).toBe(true);
    await expect(f.model.sample(cache)).rejects.toEqual(disposedCode);
  });
});

describe('SmolVLAPolicy, PolicyServer, PolicyHttpServer', () => {
  it('dispose through `await using`, in order, after queued calls', async () => {
    const policy = await SmolVLAPolicy.fromPretrained(path.join(fixturesDir, 'tiny_delta'), { tokenizer: path.join(fixturesDir, 'tokenizer', 'tokenizer.json') });
    let server!: PolicyServer;
    let front!: PolicyHttpServer;
    {
      await using p = policy;
      await using s = new PolicyServer(p);
      await using h = new PolicyHttpServer(s);
      server = s;
      front = h;
      await h.listen();
    }
    expect(policy.disposed).toBe(true);
    await expect(server.step({})).rejects.toEqual(disposedCode);
    await expect(policy.predictActionChunk({})).rejects.toEqual(disposedCode);
    await front.dispose(); // not listening any more: still fine
  });

  it('SmolVLAPolicy.dispose() frees the model at once', async () => {
    const policy = await SmolVLAPolicy.fromPretrained(path.join(fixturesDir, 'tiny_delta'), { tokenizer: null });
    policy.dispose();
    expect(policy.model.disposed).toBe(true);
    expect(policy.model.bytes).toBe(0);
  });
});
