/**
 * Network serving in openpi's WebSocket + msgpack protocol: the server, its policy backend, the
 * wire format, and RemotePolicy (the client side as a ChunkPolicy).
 */
export * from './backend';
export * from './batcher';
export * from './encode';
export * from './observation';
export * from './remotePolicy';
export * from './scan';
export * from './server';
export * from './wire';
