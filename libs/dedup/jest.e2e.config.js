module.exports = {
  displayName: 'dedup-e2e',
  preset: '../../jest.preset.js',
  rootDir: '.',
  testMatch: ['<rootDir>/test/**/*.e2e-spec.ts'],
  globalSetup: '<rootDir>/../../tools/testing/e2e-global-setup.js',
  globalTeardown: '<rootDir>/../../tools/testing/e2e-global-teardown.js',
  testTimeout: 60_000,
};
