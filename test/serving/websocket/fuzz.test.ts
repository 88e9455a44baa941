/**
 * ≥ 2 000 malformed frames over loopback (truncated msgpack, wrong types, oversize arrays, extension
 * types, deep nesting, huge declared lengths, bad keys, random bytes): each is answered with an error
 * text frame and close 1011, and the server keeps serving.
 */
import { SmolVLAPolicy } from '../../../lib/policy';
import { NdArray, policyBackend, WebSocketPolicyServer } from '../../../lib/serving/websocket';
import { byteTokenizer } from '../../../lib/train/byteTokenizer';
import { tinyConfig } from '../../../lib/train/presets';
import { exchange } from './helpers';
import { malformedFrames, validObservation } from './malformed';

it('answers every malformed frame with an error and keeps serving', async () => {
  const policy = await SmolVLAPolicy.create(tinyConfig(), { seed: 0, tokenizer: byteTokenizer() });
  const server = new WebSocketPolicyServer(policyBackend(policy), { port: 0 });
  const { url } = await server.listen();
  try {
    const frames = malformedFrames();
    expect(frames.length).toBeGreaterThanOrEqual(2000);
    const byFamily = new Map<string, number>();
    const failures: string[] = [];
    let next = 0;
    // Eight connections at a time (the default limit is 16).
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < frames.length) {
          const { family, frame } = frames[next++]!;
          const reply = await exchange(url, frame);
          if (reply.text === undefined || reply.code !== 1011) failures.push(`${family}: ${reply.text === undefined ? 'answered with actions' : `closed ${reply.code}`}`);
          byFamily.set(family, (byFamily.get(family) ?? 0) + 1);
        }
      }),
    );
    expect(failures).toEqual([]);
    expect(Object.fromEntries(byFamily)).toMatchObject({ truncated: 500, 'wrong-type': 402, oversize: 340, extension: 300, deep: 200, 'huge-length': 300, keys: 150, random: 150 });
    expect(server.stats().errors).toBe(frames.length);
    const ok = await exchange(url, validObservation());
    expect((ok.map!.get('actions') as NdArray).shape).toEqual([10, 6]);
  } finally {
    await server.close();
  }
});
