/**
 * The VM test (npm run test:vm): the node's cloud-config booted in a real Debian 12 VM under qemu, the runner
 * against it (docs/local-vm.md). Own config: it takes many minutes under TCG, one suite, in band; the same
 * global setup/teardown as `npm test`, which stop (by PID) the stand-ins this run started.
 * @type {import('jest').Config}
 */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/__tests__/vm'],
  testMatch: ['**/*.vmtest.ts'],
  // Type checking is tsc's (tsconfig sets isolatedModules); ts-jest only transpiles.
  transform: { '^.+\\.ts$': ['ts-jest', { diagnostics: false }] },
  globalSetup: '<rootDir>/__tests__/support/global-setup.ts',
  globalTeardown: '<rootDir>/__tests__/support/global-teardown.ts',
  reporters: ['default', '<rootDir>/scripts/jest-summary-reporter.js'],
  testTimeout: 3600000,
  maxWorkers: 1,
};
