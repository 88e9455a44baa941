/**
 * Serving around a policy: the control-loop server (CLS state machine with miss / hit / reuse
 * decisions), the HTTP front, adaptive threshold, calibration, statistics and reports.
 */
export * from './server';
export * from './http';
export * from './messages';
export * from './adaptive';
export * from './calibrate';
export * from './stats';
export * from './report';
export * from './chunkPolicy';
export * from './localPolicy';
export * from './sceneCheck';
export * from './runtime';
export * from './sim';
export * from './websocket';
