// Shared by every project's jest.config.ts: @swc/jest (types are checked by the typecheck target).
const { resolve } = require('node:path');

const root = __dirname;
const libs = ['dedup', 'mail', 'platform', 'testing', 'tracking'];

module.exports = {
  testEnvironment: 'node',
  moduleFileExtensions: ['ts', 'js', 'json'],
  transform: {
    '^.+\\.ts$': [
      '@swc/jest',
      {
        jsc: {
          parser: { syntax: 'typescript', decorators: true },
          transform: { legacyDecorator: true, decoratorMetadata: true },
          target: 'es2022',
          keepClassNames: true,
        },
        module: { type: 'commonjs' },
        sourceMaps: 'inline',
      },
    ],
  },
  moduleNameMapper: Object.fromEntries(
    libs.map((lib) => [`^@once/${lib}$`, resolve(root, `libs/${lib}/src/index.ts`)]),
  ),
  reporters: ['default', resolve(root, 'tools/testing/totals.reporter.js')],
};
