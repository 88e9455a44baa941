/** PolicyHttpServer on 127.0.0.1: typed JSON only, field-named errors, body and concurrency limits. */
import * as http from 'node:http';
import * as net from 'node:net';

import { MessageError, PolicyHttpServer, PolicyServer, parseActMessage, type ActMessage } from '../../lib/serving';
import { Tensor } from '../../lib/tensor';
import { ACTION_DIM, FakePolicy, chunkValue } from './fakePolicy';

const CAM = 'observation.images.cam0';
const STATE = 'observation.state';
const config = {
  inputFeatures: { [CAM]: { type: 'VISUAL' as const, shape: [3, 4, 4] }, [STATE]: { type: 'STATE' as const, shape: [3] } },
  outputFeatures: { action: { type: 'ACTION' as const, shape: [ACTION_DIM] } },
};

function message(batch = 1, over: Partial<ActMessage> = {}): ActMessage {
  return {
    observation: {
      [CAM]: { shape: [batch, 3, 2, 2], dtype: 'uint8', data: Array.from({ length: batch * 12 }, (_, i) => (i * 20) % 256) },
      [STATE]: { shape: [batch, 3], dtype: 'float32', data: Array.from({ length: batch * 3 }, (_, i) => i / 10) },
    },
    task: 'pick the cube',
    ...over,
  };
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** One request with node:http (no keep-alive), body as given. */
function request(url: string, method: string, path: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}${path}`, { method, headers: { Connection: 'close', ...headers }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text ? JSON.parse(text) : null });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

const json = { 'Content-Type': 'application/json' };

describe('PolicyHttpServer', () => {
  let policy: FakePolicy;
  let front: PolicyHttpServer;
  let url: string;
  let release: Array<() => void> = [];
  let gated = false;

  beforeEach(async () => {
    release = [];
    gated = false;
    policy = new FakePolicy({
      config,
      script: new Array(20).fill(0.9),
      gate: () => (gated ? new Promise<void>((r) => release.push(r)) : Promise.resolve()),
    });
    front = new PolicyHttpServer(new PolicyServer(policy, { reuseSteps: 0 }), { maxBodyBytes: 64 * 1024, maxConcurrent: 2 });
    url = (await front.listen()).url;
  });

  afterEach(async () => {
    release.forEach((r) => r());
    await front.close();
  });

  it('listens on loopback by default and refuses other interfaces unless allowed', () => {
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(() => new PolicyHttpServer(front.server, { host: '0.0.0.0' })).toThrow("host: '0.0.0.0' is not loopback");
    expect(() => new PolicyHttpServer(front.server, { host: '0.0.0.0', allowNonLoopback: true })).not.toThrow();
  });

  it('serves POST /act: the batch reaches the policy as tensors, the action and decision come back', async () => {
    const replies: Reply[] = [];
    for (let i = 0; i < 3; i++) replies.push(await request(url, 'POST', '/act', JSON.stringify(message(2)), json));
    expect(replies.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(replies.map((r) => r.body.decision.kind)).toEqual(['miss', 'hit-skip', 'hit-skip']);
    const row = (k: number, b: number) => Array.from({ length: ACTION_DIM }, (_, j) => chunkValue(1, b, k, j));
    expect(replies[2]!.body.actions).toEqual([row(2, 0), row(2, 1)]);
    expect(replies[1]!.body.similarity.perSample).toHaveLength(2);
    expect(replies[2]!.body.stats).toMatchObject({ steps: 3, checks: 2, cached: 2 });
    expect(replies[0]!.headers['content-type']).toBe('application/json; charset=utf-8');
    const batch = policy.batches[0] as Record<string, unknown>;
    expect(Object.keys(batch).sort()).toEqual([CAM, STATE, 'task']);
    expect(batch[CAM]).toBeInstanceOf(Tensor);
    expect(batch.task).toEqual(['pick the cube', 'pick the cube']);
    // The server frees the request's tensors after the step.
    expect((batch[CAM] as Tensor).disposed).toBe(true);
    expect((batch[STATE] as Tensor).disposed).toBe(true);
  });

  it('accepts base64 data and scales uint8 images to [0, 1]', async () => {
    const msg = message(1);
    const img = Uint8Array.from({ length: 12 }, (_, i) => i * 20);
    const state = Float32Array.from([0.5, -1, 2]);
    msg.observation[CAM] = { shape: [1, 3, 2, 2], dtype: 'uint8', data: Buffer.from(img).toString('base64') };
    msg.observation[STATE] = { shape: [1, 3], dtype: 'float32', data: Buffer.from(state.buffer).toString('base64') };
    const seen: number[][] = [];
    const original = policy.predictActionChunk.bind(policy);
    policy.predictActionChunk = async (batch, options) => {
      const b = batch as Record<string, Tensor>;
      seen.push(b[CAM]!.toNumbers(), b[STATE]!.toNumbers());
      return original(batch, options);
    };
    const r = await request(url, 'POST', '/act', JSON.stringify(msg), json);
    expect(r.status).toBe(200);
    expect(seen[0]).toEqual(Array.from(img, (v) => Math.fround(v / 255)));
    expect(seen[1]).toEqual([0.5, -1, 2]);
  });

  it('serves POST /reset and GET /stats', async () => {
    await request(url, 'POST', '/act', JSON.stringify(message()), json);
    expect((await request(url, 'GET', '/stats')).body).toMatchObject({ steps: 1, history: [{ kind: 'miss', reason: 'first' }] });
    const reset = await request(url, 'POST', '/reset', JSON.stringify({ keepStats: true }), json);
    expect(reset).toMatchObject({ status: 200, body: { ok: true } });
    expect(policy.calls.reset).toBe(1);
    expect((await request(url, 'POST', '/reset', undefined, json)).status).toBe(200);
    expect((await request(url, 'GET', '/stats')).body.steps).toBe(0);
  });

  it.each([
    ['an unknown top-level field', { ...message(), code: 'import os' }, 'body.code', 'unknown field'],
    ['an unknown observation key', { ...message(), observation: { ...message().observation, 'observation.images.cam9': message().observation[CAM]! } }, 'observation.observation.images.cam9', 'unknown field'],
    ['a missing state', { ...message(), observation: { [CAM]: message().observation[CAM]! } }, `observation.${STATE}`, 'required'],
    ['a wrong state width', { ...message(), observation: { ...message().observation, [STATE]: { shape: [1, 4], dtype: 'float32', data: [0, 0, 0, 0] } } }, `observation.${STATE}.shape[1]`, 'expected the state dimension 3, got 4'],
    ['a data length that does not match the shape', { ...message(), observation: { ...message().observation, [STATE]: { shape: [1, 3], dtype: 'float32', data: [0, 0] } } }, `observation.${STATE}.data`, 'needs 3 values, got 2'],
    ['a string among numbers', { ...message(), observation: { ...message().observation, [STATE]: { shape: [1, 3], dtype: 'float32', data: [0, '1', 0] } } }, `observation.${STATE}.data[1]`, 'expected a number, got a string'],
    ['an unsupported dtype', { ...message(), observation: { ...message().observation, [STATE]: { shape: [1, 3], dtype: 'float64', data: [0, 0, 0] } } }, `observation.${STATE}.dtype`, 'expected "float32" or "uint8"'],
    ['a shape far larger than its data', { ...message(), observation: { ...message().observation, [CAM]: { shape: [1, 3, 100000, 100000], dtype: 'uint8', data: [0, 0, 0] } } }, `observation.${CAM}.data`, 'needs 30000000000 values, got 3'],
    ['a uint8 value out of range', { ...message(), observation: { ...message().observation, [CAM]: { shape: [1, 3, 1, 1], dtype: 'uint8', data: [0, 256, 0] } } }, `observation.${CAM}.data[1]`, 'expected an integer in [0, 255], got 256'],
    ['a float image outside [0, 1]', { ...message(), observation: { ...message().observation, [CAM]: { shape: [1, 3, 1, 1], dtype: 'float32', data: [0, 1.5, 0] } } }, `observation.${CAM}.data[1]`, 'float32 images must lie in [0, 1], got 1.5'],
    ['a batch mismatch', { ...message(), observation: { ...message().observation, [CAM]: message(2).observation[CAM]! } }, `observation.${CAM}.shape[0]`, 'expected the batch size 1'],
    ['one task per robot, wrong count', { ...message(2), task: ['a'] }, 'task', 'expected one task per robot (2), got 1'],
    ['a task that is not text', { ...message(), task: 42 }, 'task', 'expected a string or an array of strings, got number 42'],
    ['bad base64', { ...message(), observation: { ...message().observation, [STATE]: { shape: [1, 3], dtype: 'float32', data: 'not base64!' } } }, `observation.${STATE}.data`, 'expected base64'],
  ])('rejects %s with 400 naming the field', async (_label, body, field, text) => {
    const r = await request(url, 'POST', '/act', JSON.stringify(body), json);
    expect(r.status).toBe(400);
    expect(r.body.error.field).toBe(field);
    expect(r.body.error.message).toContain(text);
    expect(policy.calls.prefix).toBe(0);
  });

  it('rejects what is not typed JSON: invalid JSON, other content types, empty bodies', async () => {
    const bad = await request(url, 'POST', '/act', '{"observation":', json);
    expect([bad.status, bad.body.error.field]).toEqual([400, 'body']);
    expect(bad.body.error.message).toContain('not valid JSON');
    const pickle = await request(url, 'POST', '/act', Buffer.from([0x80, 0x04, 0x95]), { 'Content-Type': 'application/octet-stream' });
    expect(pickle.status).toBe(415);
    expect((await request(url, 'POST', '/act', '', json)).body.error.message).toContain('got an empty body');
    expect((await request(url, 'POST', '/reset', JSON.stringify({ keepStats: 'yes' }), json)).body.error).toEqual({ field: 'keepStats', message: 'keepStats: expected a boolean, got a string of length 3' });
  });

  it('answers unknown routes 404 and wrong methods 405', async () => {
    expect((await request(url, 'GET', '/nope')).status).toBe(404);
    const r = await request(url, 'GET', '/act');
    expect([r.status, r.headers.allow]).toEqual([405, 'POST']);
  });

  it('limits the body size: by Content-Length before reading, and while streaming', async () => {
    const big = JSON.stringify(message(1, { task: 'x'.repeat(70 * 1024) }));
    const declared = await request(url, 'POST', '/act', big, json);
    expect(declared.status).toBe(413);
    // A chunked upload of 1 MiB: the server answers 413 once 64 KiB have arrived (and discards the rest).
    const streamed = await new Promise<number>((resolve, reject) => {
      let answered = false;
      const req = http.request(`${url}/act`, { method: 'POST', headers: { ...json, 'Transfer-Encoding': 'chunked' }, agent: false }, (res) => {
        answered = true;
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', (err) => {
        if (!answered) reject(err);
      });
      const chunk = Buffer.alloc(16 * 1024, 0x20);
      let sent = 0;
      const pump = () => {
        while (!answered && sent < 64 && req.write(chunk)) sent++;
        if (answered || sent >= 64) req.end();
        else req.once('drain', () => {
          sent++;
          pump();
        });
      };
      pump();
    });
    expect(streamed).toBe(413);
    expect(policy.calls.prefix).toBe(0);
  });

  it('limits concurrent policy work: beyond maxConcurrent the answer is 503, /stats still answers', async () => {
    gated = true;
    const first = request(url, 'POST', '/act', JSON.stringify(message()), json);
    const second = request(url, 'POST', '/act', JSON.stringify(message()), json);
    // Wait until the first has reached the policy (the second queues behind it in the server).
    for (let i = 0; i < 200 && release.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    const third = await request(url, 'POST', '/act', JSON.stringify(message()), json);
    expect(third.status).toBe(503);
    expect(third.headers['retry-after']).toBe('1');
    expect((await request(url, 'GET', '/stats')).status).toBe(200);
    gated = false;
    release.forEach((r) => r());
    expect((await first).status).toBe(200);
    expect((await second).status).toBe(200);
  });

  it('reports policy failures as 500 with the message', async () => {
    policy.predictActionChunk = async () => {
      throw new Error('batch size 2 differs from the stored 1: call reset()');
    };
    const r = await request(url, 'POST', '/act', JSON.stringify(message()), json);
    expect(r.status).toBe(500);
    expect(r.body.error.message).toContain('call reset()');
  });
});

describe('parseActMessage', () => {
  it('throws MessageError with the field path', () => {
    const cfg = new FakePolicy({ config }).config;
    let err: unknown;
    try {
      parseActMessage({ observation: [] , task: 't' }, cfg);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MessageError);
    expect((err as MessageError).field).toBe('observation');
    expect(() => parseActMessage(message(17), cfg)).toThrow('at most 16 robots per request, got 17');
    expect(() => parseActMessage(message(1, { task: 'x'.repeat(1001) }), cfg)).toThrow('task: at most 1000 characters, got 1001');
    expect(() => parseActMessage({ ...message(), observation: { [STATE]: message().observation[STATE]! } }, cfg)).toThrow('expected at least one camera of observation.images.cam0');
  });
});

/**
 * Raw HTTP over a socket: the client controls every header byte and never sends more than `body`.
 * Resolves when the server closes the connection, or after 3 s with closed: false.
 */
function rawRequest(port: number, head: string, body = ''): Promise<{ status: number; text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    const done = (closed: boolean) => resolve({ status: Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1] ?? 0), text, closed });
    const timer = setTimeout(() => {
      socket.destroy();
      done(false);
    }, 3000);
    socket.on('data', (d) => (text += d.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      done(true);
    });
    socket.on('connect', () => socket.write(head + body));
  });
}

describe('PolicyHttpServer caller checks and limits', () => {
  let front: PolicyHttpServer;
  let url: string;
  let port: number;
  let policy: FakePolicy;
  const start = async (options: ConstructorParameters<typeof PolicyHttpServer>[1] = {}) => {
    policy = new FakePolicy({ config, script: new Array(20).fill(0.9) });
    front = new PolicyHttpServer(new PolicyServer(policy, { reuseSteps: 0 }), { maxBodyBytes: 64 * 1024, ...options });
    ({ url, port } = await front.listen());
  };
  afterEach(async () => {
    await front.close();
  });
  /** n clients that send headers and one byte of a 100-byte body, then nothing; once they are in. */
  const slowClients = async (n: number) => {
    const head = 'POST /act HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n';
    const clients = Array.from({ length: n }, () => rawRequest(port, head, '{'));
    for (let i = 0; i < 400 && front.bodiesInProgress < n; i++) await new Promise((r) => setTimeout(r, 5));
    expect(front.bodiesInProgress).toBe(n);
    return clients;
  };

  it('refuses a Host that is not a name of this server (DNS rebinding) and foreign Origins', async () => {
    await start();
    const rebound = await request(url, 'POST', '/act', JSON.stringify(message()), { ...json, Host: 'attacker.example:8080' });
    expect([rebound.status, rebound.body.error.message]).toEqual([403, "Host: 'attacker.example:8080' is not a name of this server (allowedHosts option)"]);
    const crossSite = await request(url, 'POST', '/reset', undefined, { ...json, Origin: 'https://attacker.example' });
    expect(crossSite.status).toBe(403);
    expect(crossSite.body.error.message).toContain("Origin: 'https://attacker.example' is not allowed");
    expect(policy.calls.reset).toBe(0);
    expect((await request(url, 'GET', '/stats', undefined, { Host: `localhost:${port}`, Origin: `http://localhost:3000` })).status).toBe(200);
    expect((await request(url, 'GET', '/stats', undefined, { Origin: 'null' })).status).toBe(403);
    await front.close();
    await start({ allowedHosts: ['robot.lan'], allowedOrigins: ['https://ui.example'] });
    expect((await request(url, 'GET', '/stats', undefined, { Host: `robot.lan:${port}`, Origin: 'https://ui.example' })).status).toBe(200);
  });

  it('requires the JSON content type on state-changing routes, even without a body', async () => {
    await start();
    const form = await request(url, 'POST', '/reset');
    expect([form.status, form.body.error.message]).toEqual([415, 'Content-Type: expected application/json, got none']);
    const text = await request(url, 'POST', '/reset', '', { 'Content-Type': 'text/plain' });
    expect(text.status).toBe(415);
    expect(policy.calls.reset).toBe(0);
  });

  it('checks the optional API key', async () => {
    expect(() => new PolicyHttpServer(new PolicyServer(new FakePolicy({ config })), { apiKey: 'short' })).toThrow('apiKey: expected a string of at least 16 characters');
    await start({ apiKey: 'k'.repeat(32) });
    const none = await request(url, 'GET', '/stats');
    expect([none.status, none.headers['www-authenticate']]).toEqual([401, 'Bearer']);
    expect((await request(url, 'GET', '/stats', undefined, { Authorization: `Bearer ${'k'.repeat(31)}x` })).status).toBe(401);
    expect((await request(url, 'POST', '/act', JSON.stringify(message()), { ...json, Authorization: `Bearer ${'k'.repeat(32)}` })).status).toBe(200);
  });

  it('answers an oversize declared body 413 and closes the connection', async () => {
    await start();
    const r = await rawRequest(port, `POST /act HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n`, '{"a":');
    expect(r.status).toBe(413);
    expect(r.text.toLowerCase()).toContain('connection: close');
    expect(r.closed).toBe(true);
  });

  it('times out a body that does not arrive (408, closed) and slow bodies never take inference slots', async () => {
    await start({ bodyTimeoutMs: 300, maxConcurrent: 1 });
    const slow = await slowClients(6);
    const legit = await request(url, 'POST', '/act', JSON.stringify(message()), json);
    expect(legit.status).toBe(200);
    const results = await Promise.all(slow);
    expect(results.map((r) => [r.status, r.closed])).toEqual(new Array(6).fill([408, true]));
  });

  it('bounds the bodies read at once (503 beyond maxPendingBodies)', async () => {
    await start({ bodyTimeoutMs: 300, maxPendingBodies: 2 });
    const slow = await slowClients(2);
    const third = await request(url, 'POST', '/act', JSON.stringify(message()), json);
    expect([third.status, third.body.error.message]).toEqual([503, 'server busy: 2 request bodies being read']);
    await Promise.all(slow);
    expect((await request(url, 'POST', '/act', JSON.stringify(message()), json)).status).toBe(200);
  });

  it('answers a policy error with its code; a non-finite chunk is a 500, never null actions', async () => {
    await start();
    const original = policy.predictActionChunk.bind(policy);
    policy.predictActionChunk = async (batch, options) => {
      const r = await original(batch, options);
      if (r.actions.length > 0) r.actions[0]![0] = Number.POSITIVE_INFINITY;
      return r;
    };
    const r = await request(url, 'POST', '/act', JSON.stringify(message()), json);
    expect(r.status).toBe(500);
    expect(r.body.error.code).toBe('ERR_SMOLVLA_NOT_FINITE');
  });

  it('refuses a state value that overflows float32 (1e39) naming the field', async () => {
    await start();
    const msg = message();
    msg.observation[STATE] = { shape: [1, 3], dtype: 'float32', data: [0, 1e39, 0] };
    const r = await request(url, 'POST', '/act', JSON.stringify(msg), json);
    expect([r.status, r.body.error.field]).toEqual([400, `observation.${STATE}.data[1]`]);
  });
});
