/** Jest runs the TypeScript tests directly (ts-jest) against the native addon in build/. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'test/tsconfig.json' }] },
  // The examples import the package by name, as users do; tests run them against the sources.
  moduleNameMapper: { '^smolvla-node$': '<rootDir>/lib/index.ts' },
  setupFilesAfterEnv: ['<rootDir>/test/setup.ts'],
  testTimeout: 120000,
  // Native tensors are process-wide; parallel workers would only fight over 2 cores.
  maxWorkers: 1,
};
