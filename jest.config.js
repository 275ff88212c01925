/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/__tests__'],
  testMatch: ['**/*.test.ts'],
  // Type checking is done once by `tsc --noEmit` in `npm test`; per-file checks in ts-jest would repeat it.
  transform: { '^.+\\.ts$': ['ts-jest', { isolatedModules: true, diagnostics: false }] },
  // Some suites drive real services (Keystone, Swift, sshd, rclone); they start them once per run.
  testTimeout: 120000,
  maxWorkers: 2,
};
