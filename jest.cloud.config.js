/**
 * The cloud test (npm run test:cloud): `npx cdktf deploy storage node etl` against the local KVM@TACC (Debian 12's
 * Nova, Neutron, Glance, Placement beside the project's Keystone + Swift), the node a qemu (TCG) guest
 * (docs/local-cloud.md). One suite, in band; the same global setup/teardown as `npm test`, which stop (by PID)
 * the stand-ins and the cloud that this run started.
 * @type {import('jest').Config}
 */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/__tests__/cloud'],
  testMatch: ['**/*.cloudtest.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { diagnostics: false }] },
  globalSetup: '<rootDir>/__tests__/support/global-setup.ts',
  globalTeardown: '<rootDir>/__tests__/support/global-teardown.ts',
  reporters: ['default', '<rootDir>/scripts/jest-summary-reporter.js'],
  testTimeout: 7200000,
  maxWorkers: 1,
};
