/** Serving helpers around a policy: control-loop server, HTTP front, adaptive threshold, calibration, statistics, reports (SPEC §6). */
export * from './server';
export * from './http';
export * from './messages';
export * from './adaptive';
export * from './calibrate';
export * from './stats';
export * from './report';
