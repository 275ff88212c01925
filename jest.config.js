/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/__tests__'],
  // `npm test` runs every suite. `npm run test:unit` leaves out the `*.e2e.test.ts` suites (and __tests__/vm),
  // which drive real programs (Keystone, Swift, sshd, rclone, Terraform, the cdktf CLI, cloud-init);
  // `npm run test:e2e` runs only those.
  testMatch: ['**/*.test.ts'],
  // Type checking is done once by `tsc --noEmit` in `npm test`; per-file checks in ts-jest would repeat it.
  transform: { '^.+\\.ts$': ['ts-jest', { diagnostics: false }] },
  // Suites that drive real services (Keystone, Swift, sshd, rclone) start them on demand, once per run
  // (see __tests__/support); the teardown stops, by PID, only what this run started.
  globalSetup: '<rootDir>/__tests__/support/global-setup.ts',
  globalTeardown: '<rootDir>/__tests__/support/global-teardown.ts',
  reporters: ['default', '<rootDir>/scripts/jest-summary-reporter.js'],
  testTimeout: 180000,
  maxWorkers: 2,
};
