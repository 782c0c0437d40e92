#!/usr/bin/env node
// Runs a TypeScript entry point from source (swc, with the @once/* paths and decorator metadata):
// `node tools/scripts/dev.mjs apps/api/src/cli/cli.ts migrate`.
import { spawn } from 'node:child_process';

export const root = new URL('../..', import.meta.url).pathname;

/** Environment for running TypeScript from source. */
export function sourceEnv(extra = {}) {
  return {
    // Running from source is development unless said otherwise (the apps treat an unset NODE_ENV as production).
    NODE_ENV: 'development',
    ...process.env,
    SWC_NODE_PROJECT: `${root}tsconfig.base.json`,
    TS_NODE_PROJECT: `${root}tsconfig.base.json`,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    ...extra,
  };
}

/** Spawns `node -r @swc-node/register entry ...args`. */
export function runSource(entry, args = [], options = {}) {
  return spawn(process.execPath, ['-r', '@swc-node/register', entry, ...args], {
    cwd: root,
    stdio: 'inherit',
    ...options,
    env: sourceEnv(options.env),
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [entry, ...args] = process.argv.slice(2);
  runSource(entry, args).on('exit', (code) => process.exit(code ?? 1));
}
