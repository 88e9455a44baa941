/**
 * PolicyHttpServer: a PolicyServer behind node:http for a robot controller in another process.
 *
 * Safety model: there is no authentication and no TLS, so it listens on the loopback interface
 * unless told otherwise (`allowNonLoopback`; then put it behind an authenticating proxy). Requests
 * carry only typed, size-limited JSON (messages.ts) — never pickles or code: LeRobot's async
 * inference server unpickles client data from an unauthenticated gRPC port (remote code execution,
 * huggingface/lerobot issue #3047). Every field is validated and errors name it; bodies are capped
 * (default 8 MiB), as are requests in flight (default 4; more get 503), and each request has a time
 * limit. Routes: `POST /act` (ActMessage → the action to execute now), `POST /reset`
 * (ResetMessage), `GET /stats` (the statistics snapshot).
 */
import * as http from 'node:http';

import {
  MessageError,
  observationToBatch,
  parseActMessage,
  parseResetMessage,
  type BatchHandle,
  type DecodedObservation,
  type MessageLimits,
} from './messages';
import { listenOn, type BoundAddress } from './listen';
import type { PolicyServer, ServerStepResult } from './server';
import { SmolVLAError } from '../errors';

export interface PolicyHttpServerOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: an ephemeral port (see listen()'s result). */
  port?: number;
  /** Required to listen on anything but loopback (there is no authentication). */
  allowNonLoopback?: boolean;
  /** Largest request body in bytes (default 8 MiB). */
  maxBodyBytes?: number;
  /** Requests in flight, queued ones included (default 4); more are answered 503. */
  maxConcurrent?: number;
  /** Per request: reading the body plus the policy step (default 30 000 ms). */
  requestTimeoutMs?: number;
  limits?: MessageLimits;
  /** Builds the policy batch from a validated observation (default observationToBatch). */
  toBatch?: (obs: DecodedObservation) => BatchHandle;
}

/** JSON form of a step: typed arrays become number arrays. */
export interface ActResponse {
  actions: number[][];
  decision: ServerStepResult['decision'];
  similarity: ServerStepResult['similarity'];
  threshold: number;
  adjustment: ServerStepResult['adjustment'];
  queuedActions: number;
  cacheEntries: number;
  stats: ServerStepResult['stats'];
}

class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);
const ROUTES: Record<string, string> = { '/act': 'POST', '/reset': 'POST', '/stats': 'GET' };

function checkLimit(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `PolicyHttpServer ${name}: expected an integer >= 1, got ${String(value)}`);
  return value;
}

export class PolicyHttpServer implements AsyncDisposable {
  readonly server: PolicyServer;
  private readonly http: http.Server;
  private readonly host: string;
  private readonly port: number;
  private readonly maxBodyBytes: number;
  private readonly maxConcurrent: number;
  private readonly requestTimeoutMs: number;
  private readonly limits: MessageLimits;
  private readonly toBatch: (obs: DecodedObservation) => BatchHandle;
  private inFlight = 0;

  constructor(server: PolicyServer, options: PolicyHttpServerOptions = {}) {
    this.server = server;
    this.host = options.host ?? '127.0.0.1';
    if (!LOOPBACK.has(this.host) && !options.allowNonLoopback) {
      throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `PolicyHttpServer host: '${this.host}' is not loopback; the server has no authentication, pass allowNonLoopback: true to expose it anyway`);
    }
    this.port = options.port ?? 0;
    if (!Number.isInteger(this.port) || this.port < 0 || this.port > 65535) throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `PolicyHttpServer port: expected an integer in [0, 65535], got ${String(this.port)}`);
    this.maxBodyBytes = checkLimit('maxBodyBytes', options.maxBodyBytes ?? 8 * 1024 * 1024);
    this.maxConcurrent = checkLimit('maxConcurrent', options.maxConcurrent ?? 4);
    this.requestTimeoutMs = checkLimit('requestTimeoutMs', options.requestTimeoutMs ?? 30_000);
    this.limits = options.limits ?? {};
    this.toBatch = options.toBatch ?? observationToBatch;
    this.http = http.createServer((req, res) => void this.handle(req, res));
    this.http.requestTimeout = this.requestTimeoutMs;
    this.http.headersTimeout = Math.min(this.requestTimeoutMs, 60_000);
    this.http.maxHeadersCount = 64;
  }

  /** Starts listening; resolves with the bound address. */
  listen(): Promise<BoundAddress> {
    return listenOn(this.http, this.host, this.port, 'http');
  }

  /** Stops accepting connections and closes the open ones. */
  close(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.http.close((err) => (err ? reject(err) : resolve()));
      this.http.closeAllConnections();
    });
  }

  /**
   * close() that also succeeds when the server is not listening (never started, or closed already);
   * `await using` calls it. The PolicyServer behind it stays the caller's.
   */
  async dispose(): Promise<void> {
    if (this.http.listening) await this.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (this.inFlight >= this.maxConcurrent) {
      res.setHeader('Retry-After', '1');
      send(res, 503, { error: { field: null, message: `server busy: ${this.maxConcurrent} requests in flight` } });
      return;
    }
    this.inFlight++;
    res.once('close', () => this.inFlight--);
    const aborted = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) aborted.abort(new SmolVLAError('ERR_SMOLVLA_ARGUMENT', 'the client closed the connection'));
    });
    try {
      const path = new URL(req.url ?? '/', 'http://localhost').pathname;
      const method = ROUTES[path];
      if (!method) throw new HttpError(404, `no route ${path} (routes: POST /act, POST /reset, GET /stats)`);
      if (req.method !== method) {
        res.setHeader('Allow', method);
        throw new HttpError(405, `${path} accepts ${method}, got ${req.method ?? '?'}`);
      }
      if (path === '/stats') {
        send(res, 200, this.server.stats.snapshot());
      } else if (path === '/reset') {
        const { keepStats } = parseResetMessage(await this.readJson(req, true));
        await this.server.reset({ keepStats });
        send(res, 200, { ok: true });
      } else {
        const obs = parseActMessage(await this.readJson(req, false), this.server.policy.config, this.limits);
        const handle = this.toBatch(obs);
        try {
          const r = await this.server.step(handle.batch, { signal: aborted.signal, timeoutMs: this.requestTimeoutMs });
          send(res, 200, toResponse(r));
        } finally {
          handle.dispose();
        }
      }
    } catch (err) {
      if (res.headersSent || aborted.signal.aborted) return;
      // An unread body (413, 415, 404, ...) is discarded, not stored, until it ends or the request
      // time limit closes the connection; closing at once could reset it before the answer is read.
      req.resume();
      if (err instanceof MessageError) send(res, 400, { error: { field: err.field, message: err.message } });
      else if (err instanceof HttpError) send(res, err.status, { error: { field: null, message: err.message } });
      else if (err instanceof Error && err.name === 'AbortError') send(res, 504, { error: { field: null, message: err.message } });
      else send(res, 500, { error: { field: null, message: err instanceof Error ? err.message : String(err) } });
    }
  }

  /** Reads a JSON body within the size limit; undefined for an empty body when allowed. */
  private async readJson(req: http.IncomingMessage, emptyAllowed: boolean): Promise<unknown> {
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > this.maxBodyBytes) {
      throw new HttpError(413, `body: ${declared} bytes exceeds the limit of ${this.maxBodyBytes}`);
    }
    const type = req.headers['content-type'];
    const isJson = type !== undefined && /^application\/json\s*(;|$)/i.test(type);
    if (type !== undefined && !isJson) throw new HttpError(415, `Content-Type: expected application/json, got '${type}'`);
    const body = await this.readBody(req);
    if (body.length === 0) {
      if (emptyAllowed) return undefined;
      throw new MessageError('body', 'expected a JSON object, got an empty body');
    }
    if (!isJson) throw new HttpError(415, 'Content-Type: expected application/json, got none');
    try {
      return JSON.parse(body.toString('utf8')) as unknown;
    } catch (err) {
      throw new MessageError('body', `not valid JSON (${err instanceof Error ? err.message : String(err)})`);
    }
  }

  /** The body, or 413 as soon as it passes the limit (the rest is then discarded, never stored). */
  private readBody(req: http.IncomingMessage): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let settled = false;
      const settle = (err: Error | null) => {
        if (settled) return;
        settled = true;
        req.off('data', onData);
        if (err) reject(err);
        else resolve(Buffer.concat(chunks));
      };
      const onData = (chunk: Buffer) => {
        size += chunk.length;
        if (size <= this.maxBodyBytes) {
          chunks.push(chunk);
          return;
        }
        settle(new HttpError(413, `body: more than the limit of ${this.maxBodyBytes} bytes`));
      };
      req.on('data', onData);
      req.once('end', () => settle(null));
      req.once('error', (err) => settle(err));
      req.once('close', () => settle(new SmolVLAError('ERR_SMOLVLA_ARGUMENT', 'the client closed the connection')));
    });
  }
}

function toResponse(r: ServerStepResult): ActResponse {
  return {
    actions: r.actions.map((a) => Array.from(a)),
    decision: r.decision,
    similarity: r.similarity,
    threshold: r.threshold,
    adjustment: r.adjustment,
    queuedActions: r.queuedActions,
    cacheEntries: r.cacheEntries,
    stats: r.stats,
  };
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
  });
  res.end(text);
}
