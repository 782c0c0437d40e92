// Shared by every project's jest.config.ts: @swc/jest (types are checked by the typecheck target).
const { resolve } = require('node:path');

const root = __dirname;
// The aliases of tsconfig.base.json, subpath entry points (`@once/dedup/sqs`) included: one list, not two.
const { paths } = require('./tsconfig.base.json').compilerOptions;

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
    Object.entries(paths).map(([alias, [target]]) => [`^${alias}$`, resolve(root, target)]),
  ),
  reporters: ['default', resolve(root, 'tools/testing/totals.reporter.js')],
};
