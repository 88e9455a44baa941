/** Jest runs the TypeScript tests directly (ts-jest) against the native addon in build/. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'test/tsconfig.json' }] },
  setupFilesAfterEnv: ['<rootDir>/test/setup.ts'],
  testTimeout: 120000,
  // Native tensors are process-wide; parallel workers would only fight over 2 cores.
  maxWorkers: 1,
};
