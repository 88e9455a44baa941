/**
 * End to end with the real SmolVLAPolicy (fixture tiny_delta + the fixture tokenizer): JSON over
 * HTTP on 127.0.0.1 -> PolicyHttpServer -> PolicyServer -> SmolVLAPolicy -> native model. The
 * policy must satisfy PolicyLike as it is (checked at compile time below).
 */
import * as http from 'node:http';
import * as path from 'node:path';

import { SmolVLAPolicy } from '../../lib/policy/policy';
import { PolicyHttpServer, PolicyServer, type ActMessage, type PolicyLike } from '../../lib/serving';
import { fixturesDir } from '../helpers';

function post(url: string, body: unknown): Promise<{ status: number; body: any }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const text = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { 'Content-Type': 'application/json', Connection: 'close' }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) }));
    });
    req.on('error', reject);
    req.end(text);
  });
}

function message(): ActMessage {
  const b = 2;
  return {
    observation: {
      'observation.images.cam0': { shape: [b, 3, 24, 40], dtype: 'uint8', data: Buffer.from(Uint8Array.from({ length: b * 3 * 24 * 40 }, (_, i) => (i * 7) % 256)).toString('base64') },
      'observation.state': { shape: [b, 5], dtype: 'float32', data: [0.1, 0.2, 0.3, 0.4, 0.5, -0.1, -0.2, -0.3, -0.4, -0.5] },
    },
    task: ['pick up the cube', 'place the cube'],
  };
}

describe('PolicyHttpServer with SmolVLAPolicy', () => {
  it('serves refine-mode decisions from the real policy', async () => {
    const policy = await SmolVLAPolicy.fromPretrained(path.join(fixturesDir, 'tiny_delta'), { tokenizer: path.join(fixturesDir, 'tokenizer', 'tokenizer.json') });
    const asPolicyLike: PolicyLike = policy;
    const server = new PolicyServer(asPolicyLike, { hitMode: 'refine', reuseSteps: 1 });
    const front = new PolicyHttpServer(server);
    const { url } = await front.listen();
    try {
      policy.clsThreshold = -2; // every similarity passes: hits after the first call
      const replies = [];
      for (let i = 0; i < 4; i++) replies.push(await post(`${url}/act`, message()));
      expect(replies.map((r) => r.status)).toEqual([200, 200, 200, 200]);
      expect(replies.map((r) => r.body.decision.kind)).toEqual(['miss', 'hit-refine', 'reuse', 'hit-refine']);
      for (const r of replies) {
        expect(r.body.actions).toHaveLength(2);
        for (const a of r.body.actions) {
          expect(a).toHaveLength(4);
          expect(a.every(Number.isFinite)).toBe(true);
        }
      }
      expect(replies[1]!.body.similarity.perSample).toHaveLength(2);
      expect(replies[3]!.body.stats).toMatchObject({ steps: 4, checks: 2, cached: 2 });
      expect(server.cacheEntries).toHaveLength(3);
    } finally {
      await front.close();
      await server.dispose();
    }
  });
});
