/**
 * A policy server speaking openpi's WebSocket protocol (openpi `WebsocketPolicyServer`): on connect
 * one msgpack map of metadata; then each binary frame from the client is one observation map,
 * answered by one binary frame `{actions, server_timing: {infer_ms, prev_total_ms}}`. An error is
 * answered by a text frame with the message, then the connection closes with code 1011.
 * `GET /healthz` answers 200. An API key, when set, comes as `Authorization: Api-Key <key>`.
 *
 * Safety, beyond openpi's (which binds 0.0.0.0 and accepts any frame size): loopback unless an API
 * key is set; keys compared in constant time; a connection limit; an idle timeout; a slow-sender
 * timeout (a frame that starts arriving must finish); typed, size-limited decoding (wire.ts,
 * observation.ts). Logs name connections and error codes, never observation contents.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import * as http from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

import { WebSocketServer, type RawData, type WebSocket } from 'ws';

import { argumentError, SmolVLAError } from '../../errors';
import { SerialQueue } from '../../util/serial';
import { listenOn, type BoundAddress } from '../listen';
import type { ServedChunk, ServingBackend } from './backend';
import { RequestBatcher, type BatcherOptions } from './batcher';
import { DEFAULT_OBSERVATION_LIMITS, toRequest, type DecodedRequest, type ObservationLimits } from './observation';
import { DEFAULT_WIRE_LIMITS, decodeMap, encodeFrame, ndarray, type WireLimits } from './wire';

export interface WebSocketPolicyServerOptions {
  /** Default 127.0.0.1. Any non-loopback address needs `apiKey`. */
  host?: string;
  /** Default 8000 (openpi's); 0 picks a free port. */
  port?: number;
  /** Required from every client when set: `Authorization: Api-Key <key>`. */
  apiKey?: string;
  /** Open connections at most (default 16); more are refused with HTTP 503. */
  maxConnections?: number;
  /** A connection with no frame for this long is closed (default 300 000 ms). */
  idleTimeoutMs?: number;
  /** A frame (or the handshake) that starts arriving must be complete within this (default 10 000 ms). */
  slowSenderTimeoutMs?: number;
  /** Frames a connection may have waiting or running (default 2); more is a protocol error. */
  maxPendingPerConnection?: number;
  wire?: Partial<WireLimits>;
  observation?: Partial<ObservationLimits>;
  batch?: BatcherOptions;
  /** One line per event (connections, errors by code); default: none. */
  log?: (line: string) => void;
}

export interface ServerStats {
  connections: number;
  connectionsTotal: number;
  refused: { unauthorized: number; overLimit: number };
  requests: number;
  errors: number;
  /** batchCounts[k]: model calls that served k requests together. */
  batchCounts: number[];
}

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|localhost|::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3})$/;

/** Whether an address is a loopback address (what the server may bind without an API key). */
export function isLoopback(host: string): boolean {
  return LOOPBACK.test(host);
}

interface Connection {
  id: number;
  ws: WebSocket;
  queue: SerialQueue;
  pending: number;
  prevTotalMs: number | null;
  closed: boolean;
  idle: NodeJS.Timeout | null;
  frame: NodeJS.Timeout | null;
}

function positive(name: string, v: number | undefined, fallback: number): number {
  const x = v ?? fallback;
  if (!Number.isFinite(x) || x <= 0) throw argumentError(name, 'a positive number', x);
  return x;
}

const CLOSE_REASON = 'error: see the previous (text) frame';

export class WebSocketPolicyServer {
  readonly backend: ServingBackend;
  readonly host: string;
  private readonly port: number;
  private readonly keyDigest: Buffer | null;
  private readonly maxConnections: number;
  private readonly idleTimeoutMs: number;
  private readonly slowSenderTimeoutMs: number;
  private readonly maxPending: number;
  private readonly wire: WireLimits;
  private readonly obsLimits: ObservationLimits;
  private readonly batcher: RequestBatcher<DecodedRequest, ServedChunk>;
  private readonly log: (line: string) => void;
  private readonly http: http.Server;
  private readonly wss: WebSocketServer;
  private readonly metadataFrame: Buffer;
  private readonly connections = new Set<Connection>();
  /** Upgrades accepted but not yet open count against the limit too. */
  private opening = 0;
  private nextId = 0;
  private readonly counters = { connectionsTotal: 0, unauthorized: 0, overLimit: 0, requests: 0, errors: 0 };

  constructor(backend: ServingBackend, options: WebSocketPolicyServerOptions = {}) {
    this.backend = backend;
    this.host = options.host ?? '127.0.0.1';
    this.port = options.port ?? 8000;
    if (!Number.isInteger(this.port) || this.port < 0 || this.port > 65535) throw argumentError('port', 'an integer in [0, 65535]', this.port);
    const key = options.apiKey;
    if (key !== undefined && (typeof key !== 'string' || key.length < 8 || /\s/.test(key))) {
      throw argumentError('apiKey', 'a string of at least 8 characters without spaces', key);
    }
    if (!isLoopback(this.host) && key === undefined) {
      throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `host '${this.host}' is not a loopback address: serving beyond this machine needs an API key (apiKey / --api_key)`);
    }
    // Digests have equal lengths, so the comparison time does not depend on the key given.
    this.keyDigest = key === undefined ? null : createHash('sha256').update(key).digest();
    this.maxConnections = positive('maxConnections', options.maxConnections, 16);
    this.idleTimeoutMs = positive('idleTimeoutMs', options.idleTimeoutMs, 300_000);
    this.slowSenderTimeoutMs = positive('slowSenderTimeoutMs', options.slowSenderTimeoutMs, 10_000);
    this.maxPending = positive('maxPendingPerConnection', options.maxPendingPerConnection, 2);
    this.wire = { ...DEFAULT_WIRE_LIMITS, ...options.wire };
    this.obsLimits = { ...DEFAULT_OBSERVATION_LIMITS, ...options.observation };
    this.batcher = new RequestBatcher((requests) => backend.infer(requests), options.batch);
    this.log = options.log ?? (() => undefined);
    this.metadataFrame = encodeFrame(backend.metadata);

    this.http = http.createServer((req, res) => this.onRequest(req, res));
    this.http.headersTimeout = this.slowSenderTimeoutMs;
    this.http.requestTimeout = this.slowSenderTimeoutMs;
    this.http.maxHeadersCount = 64;
    this.wss = new WebSocketServer({ noServer: true, maxPayload: this.wire.maxFrameBytes, perMessageDeflate: false });
    this.http.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket as Socket, head));
  }

  /** Starts listening; resolves with the bound address (`url` is the ws:// address clients use). */
  async listen(): Promise<BoundAddress> {
    const bound = await listenOn(this.http, this.host, this.port, 'ws');
    this.log(`listening on ${bound.url}${this.keyDigest ? ' (API key required)' : ''}`);
    return bound;
  }

  stats(): ServerStats {
    const c = this.counters;
    return {
      connections: this.connections.size,
      connectionsTotal: c.connectionsTotal,
      refused: { unauthorized: c.unauthorized, overLimit: c.overLimit },
      requests: c.requests,
      errors: c.errors,
      batchCounts: this.batcher.batchCounts(),
    };
  }

  /** Stops listening and closes every connection (code 1001, going away). */
  close(): Promise<void> {
    for (const conn of this.connections) {
      this.clearTimers(conn);
      conn.closed = true;
      conn.ws.close(1001, 'server shutting down');
      conn.ws.terminate();
    }
    return new Promise((resolve, reject) => {
      this.wss.close();
      this.http.close((err) => (err ? reject(err) : resolve()));
      this.http.closeAllConnections();
    });
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const [status, body] = path === '/healthz' && (req.method === 'GET' || req.method === 'HEAD') ? [200, 'OK\n'] : [426, 'this is a WebSocket policy server (GET /healthz for health)\n'];
    res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
    res.end(body);
    // Bodies are never read.
    req.resume();
  }

  private authorised(header: string | undefined): boolean {
    if (!this.keyDigest) return true;
    const m = /^Api-Key (\S+)$/.exec(header ?? '');
    const given = createHash('sha256').update(m ? m[1]! : '').digest();
    return timingSafeEqual(given, this.keyDigest) && m !== null;
  }

  private onUpgrade(req: http.IncomingMessage, socket: Socket, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const refuse = (status: number, text: string) => {
      socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${text.length + 1}\r\n\r\n${text}\n`);
      socket.destroy();
    };
    if (!this.authorised(req.headers.authorization)) {
      this.counters.unauthorized++;
      this.log('refused a connection: missing or wrong API key');
      refuse(401, 'Unauthorized');
      return;
    }
    if (this.connections.size + this.opening >= this.maxConnections) {
      this.counters.overLimit++;
      this.log(`refused a connection: ${this.maxConnections} connections open`);
      refuse(503, 'Service Unavailable');
      return;
    }
    this.opening++;
    let opened = false;
    // A handshake that ws rejects (it answers 400 and destroys the socket) must free its slot too.
    socket.once('close', () => {
      if (!opened) this.opening--;
    });
    // Registered before ws's own listener: the first bytes of a frame start the slow-sender clock.
    let conn: Connection | null = null;
    socket.prependListener('data', () => {
      if (conn && !conn.frame && !conn.closed) conn.frame = setTimeout(() => this.fail(conn!, new SmolVLAError('ERR_SMOLVLA_PROTOCOL', `slow sender: a frame took longer than ${this.slowSenderTimeoutMs} ms`)), this.slowSenderTimeoutMs);
    });
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      opened = true;
      this.opening--;
      conn = this.open(ws, req);
    });
  }

  private open(ws: WebSocket, req: http.IncomingMessage): Connection {
    const conn: Connection = { id: ++this.nextId, ws, queue: new SerialQueue(), pending: 0, prevTotalMs: null, closed: false, idle: null, frame: null };
    this.connections.add(conn);
    this.counters.connectionsTotal++;
    this.log(`connection ${conn.id} from ${req.socket.remoteAddress ?? '?'} opened`);
    ws.on('message', (data: RawData, isBinary: boolean) => this.onMessage(conn, data, isBinary));
    ws.on('close', (code: number) => {
      conn.closed = true;
      this.clearTimers(conn);
      this.connections.delete(conn);
      this.log(`connection ${conn.id} closed (${code})`);
    });
    ws.on('error', (err: Error & { code?: string }) => {
      // ws closes the connection itself (e.g. 1009 for a frame over the size limit).
      this.counters.errors++;
      this.log(`connection ${conn.id}: ${err.code ?? 'websocket error'}`);
    });
    this.touch(conn);
    ws.send(this.metadataFrame);
    return conn;
  }

  private touch(conn: Connection): void {
    if (conn.idle) clearTimeout(conn.idle);
    conn.idle = setTimeout(() => {
      this.log(`connection ${conn.id}: idle for ${this.idleTimeoutMs} ms, closing`);
      conn.closed = true;
      conn.ws.close(1001, 'idle timeout');
    }, this.idleTimeoutMs);
  }

  private clearTimers(conn: Connection): void {
    if (conn.idle) clearTimeout(conn.idle);
    if (conn.frame) clearTimeout(conn.frame);
    conn.idle = conn.frame = null;
  }

  private onMessage(conn: Connection, data: RawData, isBinary: boolean): void {
    if (conn.frame) clearTimeout(conn.frame);
    conn.frame = null;
    if (conn.closed) return;
    this.touch(conn);
    if (!isBinary) return this.fail(conn, new SmolVLAError('ERR_SMOLVLA_PROTOCOL', 'expected a binary msgpack frame, got a text frame'));
    if (conn.pending >= this.maxPending) {
      return this.fail(conn, new SmolVLAError('ERR_SMOLVLA_PROTOCOL', `more than ${this.maxPending} frames waiting: send the next observation after the previous answer`));
    }
    const frame = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    conn.pending++;
    void conn.queue.run(() => this.answer(conn, frame)).finally(() => conn.pending--);
  }

  private async answer(conn: Connection, frame: Buffer): Promise<void> {
    if (conn.closed) return;
    const start = performance.now();
    try {
      const request = toRequest(decodeMap(frame, this.wire), this.backend.spec, this.obsLimits);
      const t0 = performance.now();
      const chunk = await this.batcher.submit(request);
      const inferMs = performance.now() - t0;
      if (conn.closed) return;
      const timing: Record<string, number> = { infer_ms: inferMs };
      if (conn.prevTotalMs !== null) timing.prev_total_ms = conn.prevTotalMs;
      const reply = encodeFrame({ actions: ndarray(chunk.actions, [chunk.chunk, chunk.actionDim]), server_timing: timing });
      this.counters.requests++;
      await new Promise<void>((resolve, reject) => conn.ws.send(reply, (err) => (err ? reject(err) : resolve())));
      conn.prevTotalMs = performance.now() - start;
    } catch (err) {
      this.fail(conn, err);
    }
  }

  /** openpi's error path: the message as a text frame, then close 1011. */
  private fail(conn: Connection, err: unknown): void {
    if (conn.closed) return;
    conn.closed = true;
    this.clearTimers(conn);
    this.counters.errors++;
    const code = err instanceof SmolVLAError ? err.code : 'ERR_SMOLVLA';
    const message = err instanceof Error ? err.message : String(err);
    // Our own protocol messages name keys and shapes only; other errors may quote input values.
    this.log(`connection ${conn.id}: ${code}${err instanceof SmolVLAError ? `: ${message}` : ''}`);
    conn.ws.send(`${code}: ${message}`, () => {
      conn.ws.close(1011, CLOSE_REASON);
      // A peer that never answers the close frame (ws would wait 30 s) loses the socket sooner.
      setTimeout(() => conn.ws.terminate(), 1000).unref();
    });
  }
}
