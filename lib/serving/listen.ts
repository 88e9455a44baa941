/** Binding an HTTP server (the JSON front and the WebSocket front share it). */
import type * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface BoundAddress {
  host: string;
  port: number;
  /** `<scheme>://host:port`, IPv6 hosts in brackets. */
  url: string;
}

/** Listens on host:port (0: any free port); resolves with the bound address, rejects on a bind error. */
export function listenOn(server: http.Server, host: string, port: number, scheme: 'http' | 'ws'): Promise<BoundAddress> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const bound = (server.address() as AddressInfo).port;
      const shown = host.includes(':') ? `[${host}]` : host;
      resolve({ host, port: bound, url: `${scheme}://${shown}:${bound}` });
    });
  });
}
