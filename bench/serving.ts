/**
 * What serving over openpi's WebSocket protocol costs (loopback), for the tiny toy model and the
 * full-size shape:
 * - protocol only: a round trip through RemotePolicy to a server whose backend returns a ready chunk
 *   (encode, send, decode, validate, answer, decode), at the model's image size;
 * - a model call in-process (`predictActionChunk`) versus the same call through the server;
 * - throughput with 4 concurrent clients (batched into shared model calls) versus 1 client.
 */
import { defaultConfig, type SmolVLAConfig } from '../lib/config';
import { SmolVLAPolicy, type RobotObservation } from '../lib/policy';
import { policyBackend, RemotePolicy, WebSocketPolicyServer, type ServingBackend } from '../lib/serving/websocket';
import { byteTokenizer } from '../lib/train/byteTokenizer';
import { tinyConfig } from '../lib/train/presets';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function configFor(size: 'tiny' | 'full'): SmolVLAConfig {
  if (size === 'tiny') return tinyConfig();
  return defaultConfig({
    inputFeatures: {
      'observation.images.top': { type: 'VISUAL', shape: [3, 512, 512] },
      'observation.state': { type: 'STATE', shape: [6] },
    },
    outputFeatures: { action: { type: 'ACTION', shape: [6] } },
  });
}

function observation(config: SmolVLAConfig, i: number): RobotObservation {
  const [, h, w] = config.inputFeatures['observation.images.top']!.shape as [number, number, number];
  return {
    'observation.images.top': { data: Uint8Array.from({ length: h * w * 3 }, (_, k) => (k * 13 + i) % 256), width: w, height: h },
    'observation.state': Float32Array.from({ length: 6 }, (_, k) => Math.sin(i + k)),
    task: 'stack the blocks',
  };
}

/** A backend with the policy's inputs that answers at once: what is left is the protocol. */
function readyBackend(of: ServingBackend, chunk: number, actionDim: number): ServingBackend {
  const actions = new Float32Array(chunk * actionDim);
  return { spec: of.spec, metadata: of.metadata, infer: async (requests) => requests.map(() => ({ actions, chunk, actionDim })) };
}

async function timeCalls(n: number, call: (i: number) => Promise<unknown>): Promise<number[]> {
  // The first call (connection warm-up, lazy allocations) is not counted.
  const ms: number[] = [];
  for (let i = 0; i <= n; i++) {
    const t0 = performance.now();
    await call(i);
    if (i > 0) ms.push(performance.now() - t0);
  }
  return ms;
}

async function withServer<T>(backend: ServingBackend, batch: { maxBatch: number; maxWaitMs: number }, body: (url: string, server: WebSocketPolicyServer) => Promise<T>): Promise<T> {
  const server = new WebSocketPolicyServer(backend, { port: 0, batch });
  const { url } = await server.listen();
  try {
    return await body(url, server);
  } finally {
    await server.close();
  }
}

export interface ServingBenchRow {
  model: string;
  measure: string;
  value: string;
}

export async function servingBench(size: 'tiny' | 'full', repeats: number): Promise<ServingBenchRow[]> {
  const config = configFor(size);
  const policy = await SmolVLAPolicy.create(config, { seed: 0, tokenizer: byteTokenizer() });
  const backend = policyBackend(policy);
  const { chunkSize } = config;
  const actionDim = backend.spec.actionDim;
  const rows: ServingBenchRow[] = [];
  const row = (measure: string, value: string) => rows.push({ model: size, measure, value });
  const protocolCalls = Math.max(100, repeats * 20);

  // In-process and remote calls alternate, so both see the same machine load.
  const calls = size === 'tiny' ? Math.max(20, repeats * 4) : repeats;
  const { local, remote } = await withServer(backend, { maxBatch: 1, maxWaitMs: 0 }, async (url) => {
    const client = await RemotePolicy.connect(url);
    const times = { local: [] as number[], remote: [] as number[] };
    try {
      for (let i = 0; i <= calls; i++) {
        const t0 = performance.now();
        const r = await policy.predictActionChunk(observation(config, i));
        const t1 = performance.now();
        r.actionsTensor?.dispose();
        r.obsClsOut?.dispose();
        const t2 = performance.now();
        await client.requestChunk(observation(config, i));
        const t3 = performance.now();
        if (i === 0) continue;
        times.local.push(t1 - t0);
        times.remote.push(t3 - t2);
      }
    } finally {
      await client.dispose();
    }
    return times;
  });
  const diffs = local.map((l, i) => remote[i]! - l);
  row(`model call in-process (median of ${calls})`, `${median(local).toFixed(1)} ms`);
  row(`model call through the server (median of ${calls})`, `${median(remote).toFixed(1)} ms (paired difference, median: ${median(diffs).toFixed(1)} ms)`);

  const protocol = await withServer(readyBackend(backend, chunkSize, actionDim), { maxBatch: 1, maxWaitMs: 0 }, async (url) => {
    const remote = await RemotePolicy.connect(url);
    try {
      return await timeCalls(protocolCalls, (i) => remote.requestChunk(observation(config, i)));
    } finally {
      await remote.dispose();
    }
  });
  row(`protocol round trip, no model (median of ${protocolCalls})`, `${median(protocol).toFixed(2)} ms`);

  if (size === 'tiny') {
    const perClient = Math.max(10, repeats * 4);
    for (const clients of [1, 4]) {
      const { seconds, counts } = await withServer(backend, { maxBatch: 4, maxWaitMs: 2 }, async (url, server) => {
        const remotes = await Promise.all(Array.from({ length: clients }, () => RemotePolicy.connect(url)));
        const t0 = performance.now();
        await Promise.all(remotes.map(async (p, c) => {
          for (let i = 0; i < perClient; i++) await p.requestChunk(observation(config, c * 1000 + i));
        }));
        const s = (performance.now() - t0) / 1000;
        await Promise.all(remotes.map((p) => p.dispose()));
        return { seconds: s, counts: server.stats().batchCounts };
      });
      const calls = counts.map((n, k) => (n > 0 ? `${n}x${k}` : '')).filter(Boolean).join(' ');
      row(`throughput, ${clients} client(s) x ${perClient} requests`, `${((clients * perClient) / seconds).toFixed(1)} chunks/s (model calls by batch size: ${calls})`);
    }
  }
  return rows;
}
