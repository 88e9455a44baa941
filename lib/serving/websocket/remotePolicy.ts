/**
 * RemotePolicy: a ChunkPolicy on the other end of an openpi WebSocket connection (this package's
 * `serve`, or any server speaking openpi's protocol and returning `actions` (C, action_dim)). A
 * control loop switches between in-process and remote inference by constructing one or the other.
 *
 * A dropped connection is reopened with exponential backoff and the request sent again (a request
 * is one observation in, one chunk out: the server keeps no state between requests). A request that
 * is aborted or times out closes the connection, so a late answer can never be taken for the next
 * request's. An error answered by the server (a text frame) is not retried. reset() sends nothing:
 * as in openpi's client, episode state lives with the caller.
 */
import { WebSocket } from 'ws';

import { argumentError, SmolVLAError } from '../../errors';
import type { RobotObservation } from '../../policy/inputs';
import { SerialQueue } from '../../util/serial';
import type { ChunkPolicy, ChunkPolicyInfo, ChunkRequestOptions, ChunkResult } from '../chunkPolicy';
import { encodeObservation } from './encode';
import { DEFAULT_WIRE_LIMITS, decodeMap, NdArray, NpScalar, type WireLimits, type WireValue } from './wire';

export interface RemotePolicyOptions {
  /** Sent as `Authorization: Api-Key <key>`. */
  apiKey?: string;
  /** Time to reach the server in connect(), all attempts together (default 30 000 ms). */
  connectTimeoutMs?: number;
  /** Time for one request, reconnects included (default 30 000 ms). */
  requestTimeoutMs?: number;
  /** Reconnect delays: initialMs, doubling (factor) up to maxMs (defaults 100, 2, 5 000), ±20 % jitter. */
  backoff?: { initialMs?: number; factor?: number; maxMs?: number };
  /** Limits on the server's frames (defaults: the server's own defaults). */
  wire?: Partial<WireLimits>;
}

/** A failure worth another attempt on a new connection (the connection broke, nothing was answered). */
class Broken extends Error {}

function plain(v: WireValue): unknown {
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [k, plain(x)]));
  if (Array.isArray(v)) return v.map(plain);
  if (v instanceof NdArray) return { dtype: v.dtype, shape: v.shape, data: v.data };
  if (v instanceof NpScalar) return v.value;
  return v;
}

function positiveInt(v: unknown, name: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new SmolVLAError('ERR_SMOLVLA_PROTOCOL', `server metadata ${name}: expected a positive integer, got ${typeof v}`);
  return v;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

export class RemotePolicy implements ChunkPolicy {
  readonly url: string;
  readonly info: ChunkPolicyInfo;
  /** The metadata map the server sent on connect (arrays as {dtype, shape, data}). */
  readonly metadata: Record<string, unknown>;
  private readonly options: RemotePolicyOptions;
  private readonly wire: WireLimits;
  private readonly serial = new SerialQueue();
  private ws: WebSocket | null;
  private disposed = false;
  /** The answer awaited on the current connection (requests are serialised: at most one). */
  private waiting: { resolve: (frame: Buffer) => void; reject: (err: Error) => void } | null = null;

  private constructor(url: string, ws: WebSocket, metadata: Record<string, unknown>, options: RemotePolicyOptions) {
    this.url = url;
    this.options = options;
    this.wire = { ...DEFAULT_WIRE_LIMITS, ...options.wire };
    this.metadata = metadata;
    const fps = metadata.fps;
    this.info = {
      chunkSize: positiveInt(metadata.chunk_size, 'chunk_size'),
      actionDim: positiveInt(metadata.action_dim, 'action_dim'),
      ...(typeof fps === 'number' && fps > 0 ? { fps } : {}),
    };
    this.ws = null;
    this.attach(ws);
  }

  /** Connects (retrying with backoff until connectTimeoutMs) and reads the server's metadata. */
  static async connect(url: string, options: RemotePolicyOptions = {}): Promise<RemotePolicy> {
    if (typeof url !== 'string' || !/^wss?:\/\//.test(url)) throw argumentError('url', 'a ws:// or wss:// address', url);
    const deadline = Date.now() + (options.connectTimeoutMs ?? 30_000);
    const wire = { ...DEFAULT_WIRE_LIMITS, ...options.wire };
    const { ws, metadata } = await RemotePolicy.dialWithBackoff(url, options, wire, deadline, undefined, () => false);
    return new RemotePolicy(url, ws, metadata, options);
  }

  private static async dialWithBackoff(
    url: string,
    options: RemotePolicyOptions,
    wire: WireLimits,
    deadline: number,
    signal: AbortSignal | undefined,
    disposed: () => boolean,
  ): Promise<{ ws: WebSocket; metadata: Record<string, unknown> }> {
    const { initialMs = 100, factor = 2, maxMs = 5_000 } = options.backoff ?? {};
    let delay = initialMs;
    for (;;) {
      try {
        return await RemotePolicy.dial(url, options, wire, Math.max(1, deadline - Date.now()));
      } catch (err) {
        if (err instanceof SmolVLAError && err.code === 'ERR_SMOLVLA_ARGUMENT') throw err;
        const wait = Math.min(delay, maxMs) * (0.8 + 0.4 * Math.random());
        if (disposed()) throw new SmolVLAError('ERR_SMOLVLA_DISPOSED', 'RemotePolicy was disposed');
        if (signal?.aborted) throw new SmolVLAError('ERR_SMOLVLA_ABORTED', 'RemotePolicy: the request was aborted');
        if (Date.now() + wait >= deadline) {
          throw new SmolVLAError('ERR_SMOLVLA_PROTOCOL', `RemotePolicy: cannot reach ${url} (${err instanceof Error ? err.message : String(err)})`, { cause: err });
        }
        await sleep(wait);
        delay *= factor;
      }
    }
  }

  /** One connection attempt: open, then the metadata frame. */
  private static dial(url: string, options: RemotePolicyOptions, wire: WireLimits, timeoutMs: number): Promise<{ ws: WebSocket; metadata: Record<string, unknown> }> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = options.apiKey ? { Authorization: `Api-Key ${options.apiKey}` } : {};
      const ws = new WebSocket(url, { headers, perMessageDeflate: false, maxPayload: wire.maxFrameBytes, handshakeTimeout: timeoutMs });
      const timer = setTimeout(() => finish(new Error('timed out waiting for the metadata frame')), timeoutMs);
      const finish = (err: Error | null, metadata?: Record<string, unknown>) => {
        clearTimeout(timer);
        ws.removeAllListeners();
        if (err) {
          ws.on('error', () => undefined);
          ws.terminate();
          reject(err);
        } else {
          resolve({ ws, metadata: metadata! });
        }
      };
      ws.once('message', (data: Buffer, isBinary: boolean) => {
        try {
          if (!isBinary) throw new SmolVLAError('ERR_SMOLVLA_PROTOCOL', `the server sent text instead of metadata: ${data.toString('utf8').slice(0, 200)}`);
          finish(null, plain(decodeMap(data, wire)) as Record<string, unknown>);
        } catch (err) {
          finish(err as Error);
        }
      });
      ws.once('unexpected-response', (_req, res) => {
        const status = res.statusCode ?? 0;
        // A refused key does not get better with retries; a full server (503) may.
        finish(
          status === 401
            ? new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `apiKey: the server at ${url} refused the ${options.apiKey ? 'given' : 'missing'} API key (HTTP 401)`)
            : new Error(`the server refused the connection: HTTP ${status}`),
        );
      });
      ws.once('error', (err) => finish(err));
      ws.once('close', (code) => finish(new Error(`closed during the handshake (${code})`)));
    });
  }

  private attach(ws: WebSocket): void {
    this.ws = ws;
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      const w = this.waiting;
      this.waiting = null;
      if (!w) return;
      if (isBinary) w.resolve(data);
      else w.reject(new SmolVLAError('ERR_SMOLVLA_PROTOCOL', `the server answered with an error: ${data.toString('utf8').slice(0, 2000)}`));
    });
    ws.on('error', () => undefined);
    ws.on('close', () => {
      if (this.ws === ws) this.ws = null;
      const w = this.waiting;
      this.waiting = null;
      w?.reject(new Broken('the connection closed before the answer'));
    });
  }

  private drop(): void {
    const ws = this.ws;
    this.ws = null;
    ws?.terminate();
  }

  requestChunk(observation: RobotObservation, options: ChunkRequestOptions = {}): Promise<ChunkResult> {
    if (this.disposed) return Promise.reject(new SmolVLAError('ERR_SMOLVLA_DISPOSED', 'RemotePolicy was disposed'));
    const frame = encodeObservation(observation, options.actionContext);
    return this.serial.run(() => this.exchange(frame, options.signal));
  }

  private async exchange(frame: Buffer, signal: AbortSignal | undefined): Promise<ChunkResult> {
    const deadline = Date.now() + (this.options.requestTimeoutMs ?? 30_000);
    for (;;) {
      if (this.disposed) throw new SmolVLAError('ERR_SMOLVLA_DISPOSED', 'RemotePolicy was disposed');
      if (signal?.aborted) throw new SmolVLAError('ERR_SMOLVLA_ABORTED', 'RemotePolicy: the request was aborted');
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
        this.drop();
        const { ws } = await RemotePolicy.dialWithBackoff(this.url, this.options, this.wire, deadline, signal, () => this.disposed);
        this.attach(ws);
      }
      try {
        return this.toResult(await this.roundTrip(this.ws!, frame, deadline, signal));
      } catch (err) {
        if (!(err instanceof Broken) || Date.now() >= deadline) {
          if (err instanceof Broken) throw new SmolVLAError('ERR_SMOLVLA_PROTOCOL', `RemotePolicy: ${err.message}`);
          throw err;
        }
      }
    }
  }

  private roundTrip(ws: WebSocket, frame: Buffer, deadline: number, signal: AbortSignal | undefined): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      const stop = (err: Error) => {
        // The answer may still come: this connection can no longer be trusted to pair answers.
        this.waiting = null;
        this.drop();
        reject(err);
      };
      const timer = setTimeout(() => stop(new SmolVLAError('ERR_SMOLVLA_ABORTED', `RemotePolicy: no answer within ${this.options.requestTimeoutMs ?? 30_000} ms`)), Math.max(1, deadline - Date.now()));
      const onAbort = () => stop(new SmolVLAError('ERR_SMOLVLA_ABORTED', 'RemotePolicy: the request was aborted'));
      signal?.addEventListener('abort', onAbort, { once: true });
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      this.waiting = {
        resolve: (f) => (done(), resolve(f)),
        reject: (e) => (done(), reject(e)),
      };
      ws.send(frame, (err) => {
        if (err && this.waiting) this.waiting.reject(new Broken(`send failed: ${err.message}`));
      });
    });
  }

  private toResult(frame: Buffer): ChunkResult {
    const reply = decodeMap(frame, this.wire);
    const actions = reply.get('actions');
    const { actionDim } = this.info;
    if (!(actions instanceof NdArray) || actions.shape.length !== 2 || actions.shape[1] !== actionDim || !(actions.data instanceof Float32Array || actions.data instanceof Float64Array)) {
      throw new SmolVLAError('ERR_SMOLVLA_PROTOCOL', `server answer: expected actions as a float array [C, ${actionDim}], got ${actions instanceof NdArray ? `${actions.dtype} [${actions.shape.join(', ')}]` : typeof actions}`);
    }
    const timing = reply.get('server_timing');
    const inferMs = timing instanceof Map ? timing.get('infer_ms') : undefined;
    return {
      actions: actions.data instanceof Float32Array ? actions.data.slice() : Float32Array.from(actions.data),
      chunk: actions.shape[0]!,
      actionDim,
      decision: 'remote',
      similarity: null,
      computeMs: typeof inferMs === 'number' ? inferMs : Number.NaN,
    };
  }

  /** Nothing crosses the wire (openpi's client does the same): the server holds no episode state. */
  async reset(): Promise<void> {
    if (this.disposed) throw new SmolVLAError('ERR_SMOLVLA_DISPOSED', 'RemotePolicy was disposed');
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    const ws = this.ws;
    this.ws = null;
    if (ws && ws.readyState === WebSocket.OPEN) ws.close(1000, 'client done');
    else ws?.terminate();
  }
}
