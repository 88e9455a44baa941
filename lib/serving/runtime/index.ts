/** The real-time control runtime: timed action queue, aggregation, ticking, metrics. */
export * from './aggregate';
export * from './actionQueue';
export * from './controlRuntime';
export * from './metrics';
export * from './table';
export * from './report';
