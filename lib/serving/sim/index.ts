/** The simulated robot, the synchronous baseline loop and scene-change scoring (demo, tests, bench). */
export * from './simRobot';
export * from './detection';
export * from './syncLoop';
export * from './compare';
