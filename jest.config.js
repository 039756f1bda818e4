/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: '<rootDir>/test/node-realm-environment.js',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { diagnostics: false }] },
  // Many tests run real training processes; on 2 shared cores one can take several minutes.
  testTimeout: 600000,
  maxWorkers: 2,
};
