/** The decoded-episode cache: bounded by bytes, least recently used first out, one decode per key. */
import { FrameCache } from '../../lib/data/frame-cache';
import type { DecodedFrames } from '../../lib/data/video';

const frames = (bytes: number): DecodedFrames => ({ width: 1, height: 1, count: 1, timestamps: new Float64Array(1), rgb: new Uint8Array(bytes) });

describe('FrameCache', () => {
  it('shares one load between concurrent requests for a key', async () => {
    const cache = new FrameCache(100);
    let loads = 0;
    const load = async (): Promise<DecodedFrames> => {
      loads++;
      return frames(10);
    };
    const [a, b] = await Promise.all([cache.get('k', load), cache.get('k', load)]);
    expect(a).toBe(b);
    expect(await cache.get('k', load)).toBe(a);
    expect(loads).toBe(1);
  });

  it('evicts the least recently used entries beyond the byte budget', async () => {
    const cache = new FrameCache(25);
    const loaded: string[] = [];
    const get = (key: string, bytes: number): Promise<DecodedFrames> =>
      cache.get(key, async () => {
        loaded.push(key);
        return frames(bytes);
      });
    await get('a', 10);
    await get('b', 10);
    await get('a', 10); // a is now the most recent
    await get('c', 10); // over budget: b goes
    expect(cache.size).toBe(20);
    await get('a', 10);
    await get('b', 10); // reloaded
    expect(loaded).toEqual(['a', 'b', 'c', 'b']);
    await get('huge', 100); // kept alone although over budget
    expect(cache.size).toBe(100);
  });

  it('does not cache failures', async () => {
    const cache = new FrameCache(100);
    await expect(cache.get('k', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(cache.get('k', async () => frames(1))).resolves.toMatchObject({ count: 1 });
  });
});
