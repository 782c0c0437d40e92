// Unit tests of the chaos harness's pure parts: `npx jest -c tools/chaos/jest.config.js`.
module.exports = {
  displayName: 'chaos',
  preset: '../../jest.preset.js',
  rootDir: '.',
  testMatch: ['<rootDir>/**/*.spec.ts'],
};
