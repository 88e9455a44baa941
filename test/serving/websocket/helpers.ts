/** A bare protocol client for the server tests (loopback only). */
import { WebSocket } from 'ws';

import { decodeMap, type WireMap } from '../../../lib/serving/websocket';

export interface Reply {
  text?: string;
  map?: WireMap;
}

export interface BareClient {
  ws: WebSocket;
  metadata: WireMap;
  /** The next frame from the server ({} once the connection has closed). */
  next(): Promise<Reply>;
  /** The close code, once closed. */
  closed: Promise<number>;
}

/** Opens a connection and reads the metadata frame; rejects with the HTTP status when refused. */
export function connect(url: string, headers: Record<string, string> = {}): Promise<BareClient> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers, perMessageDeflate: false });
    const frames: Reply[] = [];
    const waiters: Array<(r: Reply) => void> = [];
    const closed = new Promise<number>((res) =>
      ws.once('close', (code) => {
        waiters.splice(0).forEach((w) => w({}));
        res(code);
      }),
    );
    ws.on('error', () => undefined);
    ws.once('unexpected-response', (_req, res) => {
      reject(new Error(`HTTP ${res.statusCode}`));
      ws.terminate();
    });
    let first = true;
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      const reply: Reply = isBinary ? { map: decodeMap(data) } : { text: data.toString('utf8') };
      if (first) {
        first = false;
        resolve({
          ws,
          metadata: reply.map!,
          next: () => new Promise<Reply>((res) => (frames.length > 0 ? res(frames.shift()!) : ws.readyState === WebSocket.CLOSED ? res({}) : waiters.push(res))),
          closed,
        });
        return;
      }
      const w = waiters.shift();
      if (w) w(reply);
      else frames.push(reply);
    });
  });
}

/** Sends one frame and returns the answer (and, for an error, the close code). */
export async function exchange(url: string, frame: Buffer): Promise<Reply & { code?: number }> {
  const c = await connect(url);
  c.ws.send(frame);
  const reply = await c.next();
  if (reply.text !== undefined) return { ...reply, code: await c.closed };
  c.ws.close();
  return reply;
}
