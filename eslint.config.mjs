import { fileURLToPath } from 'node:url';
import nx from '@nx/eslint-plugin';
import importX, { createNodeResolver } from 'eslint-plugin-import-x';

/** Who may import whom (tags in each project.json). */
const boundaries = {
  banTransitiveDependencies: true,
  allow: [],
  depConstraints: [
    { sourceTag: 'type:app', onlyDependOnLibsWithTags: ['type:lib'] },
    { sourceTag: 'type:e2e', onlyDependOnLibsWithTags: ['type:app', 'type:lib', 'type:tooling'] },
    { sourceTag: 'type:tooling', onlyDependOnLibsWithTags: ['type:lib'] },
    { sourceTag: 'type:lib', onlyDependOnLibsWithTags: ['type:lib'] },
    {
      sourceTag: 'scope:platform',
      onlyDependOnLibsWithTags: ['scope:platform', 'scope:product', 'scope:testing'],
    },
    { sourceTag: 'scope:product', onlyDependOnLibsWithTags: ['scope:product', 'scope:testing'] },
    { sourceTag: 'scope:testing', onlyDependOnLibsWithTags: [] },
  ],
};

export default [
  ...nx.configs['flat/base'],
  ...nx.configs['flat/typescript'],
  {
    ignores: ['**/dist', '**/node_modules', '**/tmp', '**/.nx', 'tools/**/*.js'],
  },
  {
    files: ['**/*.ts'],
    rules: {
      '@nx/enforce-module-boundaries': ['error', { ...boundaries, enforceBuildableLibDependency: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'error',
    },
  },
  {
    // No import cycle inside a project (Nx's graph already forbids them between projects). The
    // resolver reads tsconfig.base.json, so `@once/*` aliases are followed too.
    files: ['libs/**/*.ts', 'apps/**/*.ts'],
    plugins: { 'import-x': importX },
    settings: {
      'import-x/extensions': ['.ts', '.js'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
      'import-x/resolver-next': [
        createNodeResolver({
          extensions: ['.ts', '.js', '.json', '.node'],
          tsconfig: { configFile: fileURLToPath(new URL('./tsconfig.base.json', import.meta.url)) },
        }),
      ],
    },
    rules: { 'import-x/no-cycle': 'error' },
  },
  {
    // Tests of a published lib may use @once/testing: it is a devDependency, never in the package.
    files: ['libs/**/*.spec.ts', 'libs/**/*.e2e-spec.ts', 'libs/*/test/**/*.ts'],
    rules: {
      '@nx/enforce-module-boundaries': ['error', { ...boundaries, enforceBuildableLibDependency: false }],
    },
  },
  {
    files: ['**/*.spec.ts', '**/*.e2e-spec.ts', 'bench/**/*.ts'],
    rules: {
      // Tests assert what they read; a missing value fails the assertion that follows.
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
];
