/**
 * The WebSocket server with the tiny demo model over loopback: protocol, batching, RemotePolicy,
 * authentication, limits and timeouts.
 */
import * as http from 'node:http';
import * as net from 'node:net';

import { SmolVLAPolicy } from '../../../lib/policy';
import { NdArray, policyBackend, RemotePolicy, WebSocketPolicyServer, type WebSocketPolicyServerOptions } from '../../../lib/serving/websocket';
import { byteTokenizer } from '../../../lib/train/byteTokenizer';
import { tinyConfig } from '../../../lib/train/presets';
import { connect, exchange } from './helpers';
import { dottedObservation, validObservation } from './malformed';

let policy: SmolVLAPolicy;
const servers: WebSocketPolicyServer[] = [];

async function start(options: WebSocketPolicyServerOptions = {}): Promise<{ server: WebSocketPolicyServer; url: string; port: number }> {
  const server = new WebSocketPolicyServer(policyBackend(policy, { fps: 30 }), { port: 0, ...options });
  servers.push(server);
  const { url, port } = await server.listen();
  return { server, url: url.replace('0.0.0.0', '127.0.0.1'), port };
}

const observation = (i: number) => ({
  'observation.images.top': { data: Uint8Array.from({ length: 48 * 48 * 3 }, (_, k) => (k * 7 + i) % 256), width: 48, height: 48 },
  'observation.state': Float32Array.from({ length: 6 }, (_, k) => Math.sin(i + k)),
  task: 'stack the blocks',
});

beforeAll(async () => {
  policy = await SmolVLAPolicy.create(tinyConfig(), { seed: 0, tokenizer: byteTokenizer() });
});

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

describe('WebSocketPolicyServer protocol', () => {
  it('sends metadata on connect and answers each observation with {actions, server_timing}', async () => {
    const { url } = await start();
    const c = await connect(url);
    expect(Object.fromEntries(['policy_type', 'chunk_size', 'action_dim', 'fps'].map((k) => [k, c.metadata.get(k)]))).toEqual({ policy_type: 'smolvla', chunk_size: 10, action_dim: 6, fps: 30 });
    for (const frame of [validObservation(), dottedObservation()]) c.ws.send(frame);
    const first = (await c.next()).map!;
    const second = (await c.next()).map!;
    for (const reply of [first, second]) {
      const actions = reply.get('actions') as NdArray;
      expect([actions.dtype, actions.shape]).toEqual(['float32', [10, 6]]);
      expect(Array.from(actions.data as Float32Array).every(Number.isFinite)).toBe(true);
    }
    expect([...(first.get('server_timing') as Map<string, unknown>).keys()]).toEqual(['infer_ms']);
    expect([...(second.get('server_timing') as Map<string, unknown>).keys()].sort()).toEqual(['infer_ms', 'prev_total_ms']);
    c.ws.close();
  });

  it('answers GET /healthz with 200', async () => {
    const { port } = await start();
    const body = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path: '/healthz' }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      }).on('error', reject);
    });
    expect(body).toEqual({ status: 200, text: 'OK\n' });
  });

  it('answers errors with a text frame, then closes with 1011', async () => {
    const { url } = await start();
    const c = await connect(url);
    c.ws.send('{"not": "msgpack"}');
    expect((await c.next()).text).toMatch(/ERR_SMOLVLA_PROTOCOL: expected a binary msgpack frame/);
    expect(await c.closed).toBe(1011);
    const r = await exchange(url, Buffer.from([0x81, 0xa1, 0x61, 0xd4, 0x01, 0x00]));
    expect([r.code, r.text]).toEqual([1011, expect.stringMatching(/extension type/)]);
  });
});

describe('batching and RemotePolicy', () => {
  it('round-trips through RemotePolicy (the ChunkPolicy a control loop uses)', async () => {
    const { url } = await start();
    const remote = await RemotePolicy.connect(url);
    expect(remote.info).toEqual({ chunkSize: 10, actionDim: 6, fps: 30 });
    const r = await remote.requestChunk(observation(0), { actionContext: [new Float32Array(6), new Float32Array(6)] });
    expect([r.chunk, r.actionDim, r.actions.length, r.decision]).toEqual([10, 6, 60, 'remote']);
    expect(r.computeMs).toBeGreaterThan(0);
    await remote.reset();
    await remote.dispose();
    await expect(remote.requestChunk(observation(1))).rejects.toMatchObject({ code: 'ERR_SMOLVLA_DISPOSED' });
  });

  it('joins concurrent connections into one model call with per-connection results', async () => {
    const { url, server } = await start({ batch: { maxBatch: 4, maxWaitMs: 200 } });
    const remotes = await Promise.all([0, 1, 2, 3].map(() => RemotePolicy.connect(url)));
    const results = await Promise.all(remotes.map((p, i) => p.requestChunk(observation(i))));
    expect(results.map((r) => r.actions.length)).toEqual([60, 60, 60, 60]);
    const counts = server.stats().batchCounts;
    expect(counts.slice(2).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    // Each robot's chunk is its own (different observations, different noise).
    expect(new Set(results.map((r) => r.actions[0])).size).toBe(4);
    await Promise.all(remotes.map((p) => p.dispose()));
  });

  it('reports server errors, then reconnects for the next request and after a restart', async () => {
    const first = await start();
    const remote = await RemotePolicy.connect(first.url, { backoff: { initialMs: 20, maxMs: 100 } });
    await expect(remote.requestChunk({ ...observation(0), 'observation.state': Float32Array.from([1, 2]) })).rejects.toMatchObject({
      code: 'ERR_SMOLVLA_PROTOCOL',
      message: expect.stringMatching(/observation.state: expected 6 values/),
    });
    expect((await remote.requestChunk(observation(1))).chunk).toBe(10);
    await first.server.close();
    servers.splice(servers.indexOf(first.server), 1);
    const pending = remote.requestChunk(observation(2));
    await new Promise((r) => setTimeout(r, 150));
    await start({ port: first.port });
    expect((await pending).chunk).toBe(10);
    await remote.dispose();
  });
});

describe('security and limits', () => {
  it('refuses a non-loopback address without an API key', () => {
    expect(() => new WebSocketPolicyServer(policyBackend(policy), { host: '0.0.0.0' })).toThrow(/needs an API key/);
    expect(() => new WebSocketPolicyServer(policyBackend(policy), { host: '192.168.1.10' })).toThrow(expect.objectContaining({ code: 'ERR_SMOLVLA_ARGUMENT' }));
  });

  it('requires Authorization: Api-Key off loopback (connecting over loopback only)', async () => {
    const key = 'k3y-for-the-test-0123';
    const { url, server } = await start({ host: '0.0.0.0', apiKey: key });
    await expect(connect(url)).rejects.toThrow('HTTP 401');
    await expect(connect(url, { Authorization: `Api-Key ${key}x` })).rejects.toThrow('HTTP 401');
    await expect(connect(url, { Authorization: `Bearer ${key}` })).rejects.toThrow('HTTP 401');
    const c = await connect(url, { Authorization: `Api-Key ${key}` });
    expect(c.metadata.get('chunk_size')).toBe(10);
    c.ws.close();
    await expect(RemotePolicy.connect(url, { apiKey: 'wrong-key-123456' })).rejects.toMatchObject({ code: 'ERR_SMOLVLA_ARGUMENT' });
    const remote = await RemotePolicy.connect(url, { apiKey: key });
    expect((await remote.requestChunk(observation(0))).chunk).toBe(10);
    await remote.dispose();
    expect(server.stats().refused.unauthorized).toBe(4);
  });

  it('limits connections, closes idle ones, and refuses oversize and pipelined frames', async () => {
    const { url, server } = await start({ maxConnections: 2, idleTimeoutMs: 300, maxPendingPerConnection: 1, wire: { maxFrameBytes: 64 * 1024 } });
    const a = await connect(url);
    const b = await connect(url);
    await expect(connect(url)).rejects.toThrow('HTTP 503');
    expect(await a.closed).toBe(1001);
    await b.closed;
    while (server.stats().connections > 0) await new Promise((r) => setTimeout(r, 10));
    const big = await connect(url);
    big.ws.send(validObservation(160));
    expect(await big.closed).toBe(1009);
    const p = await connect(url);
    p.ws.send(validObservation(8));
    p.ws.send(validObservation(8));
    // The second frame is refused; the first is not answered on a connection that is closing.
    expect((await p.next()).text).toMatch(/more than 1 frames waiting/);
    expect(await p.closed).toBe(1011);
    expect(server.stats().refused.overLimit).toBe(1);
  });

  it('closes a connection whose frame does not finish arriving (slow sender)', async () => {
    const { port } = await start({ slowSenderTimeoutMs: 300 });
    const socket = net.connect(port, '127.0.0.1');
    const received: Buffer[] = [];
    socket.on('data', (d: Buffer) => received.push(d));
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write(
      'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
    await new Promise((r) => setTimeout(r, 100));
    // A masked binary frame declaring 100 bytes, of which 10 are sent.
    socket.write(Buffer.concat([Buffer.from([0x82, 0x80 | 100, 1, 2, 3, 4]), Buffer.alloc(10)]));
    // The server sends the error and a close frame, and drops the socket when no close reply comes.
    await closed;
    const text = Buffer.concat(received).toString('latin1');
    expect(text).toMatch(/slow sender: a frame took longer than 300 ms/);
    expect(text).toContain(String.fromCharCode(0x88));
  });
});
