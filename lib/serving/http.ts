/**
 * PolicyHttpServer: a PolicyServer behind node:http for a robot controller in another process.
 *
 * Safety model (docs/hardening.md): no TLS, so it listens on the loopback interface unless
 * told otherwise (`allowNonLoopback`; then set `apiKey` and/or put it behind a proxy). Requests carry
 * only typed, size-limited JSON (messages.ts) — never pickles or code: LeRobot's async inference
 * server unpickles client data from an unauthenticated gRPC port (remote code execution,
 * huggingface/lerobot issue #3047). Every field is validated and errors name it.
 *
 * - Browsers: the Host header must name this server (loopback names unless `allowedHosts`), which
 *   defeats DNS rebinding; a request with an Origin must come from a loopback page or one of
 *   `allowedOrigins`; POST routes require `Content-Type: application/json`, which a cross-site form
 *   cannot send without a CORS preflight this server never grants.
 * - Optional `apiKey`: every request then needs `Authorization: Bearer <key>` (compared in constant
 *   time).
 * - Limits, kept apart so slow clients cannot starve inference: headers must arrive within
 *   `headersTimeoutMs`, a body within `bodyTimeoutMs` (then 408 and the connection closes), at most
 *   `maxPendingBodies` bodies are read at once; `maxConcurrent` bounds only policy work (queued steps
 *   included; more get 503), each with `requestTimeoutMs`. A body over `maxBodyBytes` gets 413 and the
 *   connection is closed, never drained.
 *
 * Routes: `POST /act` (ActMessage → the action to execute now), `POST /reset` (ResetMessage),
 * `GET /stats` (the statistics snapshot).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
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
  /** Required to listen on anything but loopback (set `apiKey` too). */
  allowNonLoopback?: boolean;
  /** Host header names accepted besides localhost, 127.0.0.1, ::1 and `host` (e.g. the machine's name). */
  allowedHosts?: string[];
  /** Browser origins accepted besides loopback pages, exactly as sent (e.g. 'https://ui.example.com'). */
  allowedOrigins?: string[];
  /** When set, every request needs `Authorization: Bearer <apiKey>` (at least 16 characters). */
  apiKey?: string;
  /** Largest request body in bytes (default 8 MiB). */
  maxBodyBytes?: number;
  /** Request bodies read at the same time (default 16); more are answered 503. */
  maxPendingBodies?: number;
  /** Policy steps and resets in flight, queued ones included (default 4); more are answered 503. */
  maxConcurrent?: number;
  /** Time for a client to send the request headers (default 10 000 ms). */
  headersTimeoutMs?: number;
  /** Time for a client to send the body once the headers arrived (default 10 000 ms); then 408. */
  bodyTimeoutMs?: number;
  /** Per request: the policy step (default 30 000 ms); then 504. */
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
  readonly headers: Record<string, string>;
  constructor(status: number, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.headers = headers;
  }
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);
const ROUTES: Record<string, string> = { '/act': 'POST', '/reset': 'POST', '/stats': 'GET' };

function checkLimit(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `PolicyHttpServer ${name}: expected an integer >= 1, got ${String(value)}`);
  return value;
}

/** The host name of a Host header ('[::1]:80' -> '::1', 'Example.com:8080' -> 'example.com'). */
function hostName(header: string): string {
  const h = header.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(1, h.indexOf(']') >>> 0);
  const colon = h.indexOf(':');
  return colon === h.lastIndexOf(':') && colon >= 0 ? h.slice(0, colon) : h;
}

const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

export class PolicyHttpServer implements AsyncDisposable {
  readonly server: PolicyServer;
  private readonly http: http.Server;
  private readonly host: string;
  private readonly port: number;
  private readonly maxBodyBytes: number;
  private readonly maxPendingBodies: number;
  private readonly maxConcurrent: number;
  private readonly bodyTimeoutMs: number;
  private readonly requestTimeoutMs: number;
  private readonly allowedHosts: Set<string>;
  private readonly allowedOrigins: Set<string>;
  private readonly apiKeyDigest: Buffer | null;
  private readonly limits: MessageLimits;
  private readonly toBatch: (obs: DecodedObservation) => BatchHandle;
  private inFlight = 0;
  private readingBodies = 0;

  constructor(server: PolicyServer, options: PolicyHttpServerOptions = {}) {
    this.server = server;
    this.host = options.host ?? '127.0.0.1';
    if (!LOOPBACK.has(this.host) && !options.allowNonLoopback) {
      throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `PolicyHttpServer host: '${this.host}' is not loopback; pass allowNonLoopback: true (and set apiKey) to expose it`);
    }
    this.port = options.port ?? 0;
    if (!Number.isInteger(this.port) || this.port < 0 || this.port > 65535) throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `PolicyHttpServer port: expected an integer in [0, 65535], got ${String(this.port)}`);
    this.maxBodyBytes = checkLimit('maxBodyBytes', options.maxBodyBytes ?? 8 * 1024 * 1024);
    this.maxPendingBodies = checkLimit('maxPendingBodies', options.maxPendingBodies ?? 16);
    this.maxConcurrent = checkLimit('maxConcurrent', options.maxConcurrent ?? 4);
    const headersTimeoutMs = checkLimit('headersTimeoutMs', options.headersTimeoutMs ?? 10_000);
    this.bodyTimeoutMs = checkLimit('bodyTimeoutMs', options.bodyTimeoutMs ?? 10_000);
    this.requestTimeoutMs = checkLimit('requestTimeoutMs', options.requestTimeoutMs ?? 30_000);
    this.allowedHosts = new Set([...LOOPBACK, this.host.toLowerCase(), ...(options.allowedHosts ?? []).map((h) => hostName(h))]);
    this.allowedOrigins = new Set(options.allowedOrigins ?? []);
    if (options.apiKey !== undefined && (typeof options.apiKey !== 'string' || options.apiKey.length < 16)) {
      throw new RangeError('PolicyHttpServer apiKey: expected a string of at least 16 characters');
    }
    this.apiKeyDigest = options.apiKey === undefined ? null : digest(options.apiKey);
    this.limits = options.limits ?? {};
    this.toBatch = options.toBatch ?? observationToBatch;
    this.http = http.createServer((req, res) => void this.handle(req, res));
    // Node's own limits on receiving a request (408 and close): headers, then the whole request.
    this.http.headersTimeout = headersTimeoutMs;
    this.http.requestTimeout = headersTimeoutMs + this.bodyTimeoutMs;
    this.http.maxHeadersCount = 64;
  }

  /** Request bodies being read now (for monitoring: slow clients show here, not as policy work). */
  get bodiesInProgress(): number {
    return this.readingBodies;
  }

  /** Policy steps and resets in flight, queued ones included. */
  get requestsInFlight(): number {
    return this.inFlight;
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
    const aborted = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) aborted.abort(new SmolVLAError('ERR_SMOLVLA_ARGUMENT', 'the client closed the connection'));
    });
    try {
      this.checkCaller(req);
      const path = new URL(req.url ?? '/', 'http://localhost').pathname;
      const method = ROUTES[path];
      if (!method) throw new HttpError(404, `no route ${path} (routes: POST /act, POST /reset, GET /stats)`);
      if (req.method !== method) throw new HttpError(405, `${path} accepts ${method}, got ${req.method ?? '?'}`, { Allow: method });
      if (path === '/stats') {
        send(res, 200, this.server.stats.snapshot());
      } else if (path === '/reset') {
        const { keepStats } = parseResetMessage(await this.readJson(req, true));
        await this.inference(() => this.server.reset({ keepStats }));
        send(res, 200, { ok: true });
      } else {
        const obs = parseActMessage(await this.readJson(req, false), this.server.policy.config, this.limits);
        const r = await this.inference(async () => {
          const handle = this.toBatch(obs);
          try {
            return await this.server.step(handle.batch, { signal: aborted.signal, timeoutMs: this.requestTimeoutMs });
          } finally {
            handle.dispose();
          }
        });
        send(res, 200, toResponse(r));
      }
    } catch (err) {
      if (res.headersSent || aborted.signal.aborted) return;
      if (!req.complete) {
        // An unread body is never drained: the answer goes out and the connection closes
        // (Node ends it after the response when the response says Connection: close).
        res.setHeader('Connection', 'close');
        req.resume();
      }
      if (err instanceof MessageError) send(res, 400, { error: { field: err.field, message: err.message } });
      else if (err instanceof HttpError) {
        for (const [k, v] of Object.entries(err.headers)) res.setHeader(k, v);
        send(res, err.status, { error: { field: null, message: err.message } });
      } else if (err instanceof Error && err.name === 'AbortError') send(res, 504, { error: { field: null, message: err.message } });
      else {
        const code = (err as { code?: unknown }).code;
        const status = code === 'ERR_SMOLVLA_ARGUMENT' ? 400 : 500;
        const body = { field: null, message: err instanceof Error ? err.message : String(err), ...(typeof code === 'string' ? { code } : {}) };
        send(res, status, { error: body });
      }
    }
  }

  /** Host, Origin and API key, before anything else is looked at. */
  private checkCaller(req: http.IncomingMessage): void {
    const host = req.headers.host;
    if (host === undefined || !this.allowedHosts.has(hostName(host))) {
      throw new HttpError(403, `Host: '${host ?? ''}' is not a name of this server (allowedHosts option)`);
    }
    const origin = req.headers.origin;
    if (origin !== undefined && !this.allowedOrigins.has(origin)) {
      let loopback = false;
      try {
        loopback = LOOPBACK.has(new URL(origin).hostname.replace(/^\[|\]$/g, ''));
      } catch {
        // 'null' or garbage: not loopback.
      }
      if (!loopback) throw new HttpError(403, `Origin: '${origin}' is not allowed (allowedOrigins option)`);
    }
    if (this.apiKeyDigest) {
      const auth = req.headers.authorization ?? '';
      const given = auth.startsWith('Bearer ') ? auth.slice(7) : '';
      // Digests have equal lengths, so the comparison time does not depend on the key.
      if (!timingSafeEqual(digest(given), this.apiKeyDigest)) {
        throw new HttpError(401, 'Authorization: a valid "Bearer <apiKey>" is required', { 'WWW-Authenticate': 'Bearer' });
      }
    }
  }

  /** Runs policy work within maxConcurrent (503 beyond it). */
  private async inference<T>(work: () => Promise<T>): Promise<T> {
    if (this.inFlight >= this.maxConcurrent) {
      throw new HttpError(503, `server busy: ${this.maxConcurrent} policy requests in flight`, { 'Retry-After': '1' });
    }
    this.inFlight++;
    try {
      return await work();
    } finally {
      this.inFlight--;
    }
  }

  /** Reads a JSON body within the size limit; undefined for an empty body when allowed. */
  private async readJson(req: http.IncomingMessage, emptyAllowed: boolean): Promise<unknown> {
    // State-changing routes need the JSON type even with no body: a cross-site form cannot send it.
    const type = req.headers['content-type'];
    if (type === undefined || !/^application\/json\s*(;|$)/i.test(type)) {
      throw new HttpError(415, `Content-Type: expected application/json, got ${type === undefined ? 'none' : `'${type}'`}`);
    }
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > this.maxBodyBytes) {
      throw new HttpError(413, `body: ${declared} bytes exceeds the limit of ${this.maxBodyBytes}`);
    }
    const body = await this.readBody(req);
    if (body.length === 0) {
      if (emptyAllowed) return undefined;
      throw new MessageError('body', 'expected a JSON object, got an empty body');
    }
    try {
      return JSON.parse(body.toString('utf8')) as unknown;
    } catch (err) {
      throw new MessageError('body', `not valid JSON (${err instanceof Error ? err.message : String(err)})`);
    }
  }

  /** The body, or 413 as soon as it passes the limit, 408 past bodyTimeoutMs, 503 past maxPendingBodies. */
  private readBody(req: http.IncomingMessage): Promise<Buffer> {
    if (this.readingBodies >= this.maxPendingBodies) {
      return Promise.reject(new HttpError(503, `server busy: ${this.maxPendingBodies} request bodies being read`, { 'Retry-After': '1' }));
    }
    this.readingBodies++;
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let settled = false;
      const settle = (err: Error | null) => {
        if (settled) return;
        settled = true;
        this.readingBodies--;
        clearTimeout(timer);
        req.off('data', onData);
        if (err) reject(err);
        else resolve(Buffer.concat(chunks));
      };
      const timer = setTimeout(() => settle(new HttpError(408, `body: not received within ${this.bodyTimeoutMs} ms`)), this.bodyTimeoutMs);
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
