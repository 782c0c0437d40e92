#!/usr/bin/env node
// The test command (`npm test`): format check, lint, type-check and unit tests through Nx in
// parallel, then every e2e suite one project at a time (they share Postgres and Redis), then the
// package consumer test (tools/package-consumer), then one closing line with the totals of every jest run.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('../..', import.meta.url).pathname;
const results = join(root, 'tmp', 'test-results');
rmSync(results, { recursive: true, force: true });

const env = {
  ...process.env,
  NX_DAEMON: 'false',
  NX_TUI: 'false',
  NX_SKIP_NX_CACHE: 'true',
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
};

function run(title, command, args) {
  console.log(`\n=== ${title}: ${command} ${args.join(' ')}`);
  const started = Date.now();
  const { status } = spawnSync(command, args, { cwd: root, env, stdio: 'inherit' });
  console.log(
    `=== ${title}: ${status === 0 ? 'ok' : `FAILED (exit ${status})`} in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  return status === 0;
}

const nx = join(root, 'node_modules', '.bin', 'nx');
const steps = [
  ['format', join(root, 'node_modules', '.bin', 'prettier'), ['--check', '--log-level', 'warn', '.']],
  [
    'lint, typecheck, unit',
    nx,
    ['run-many', '-t', 'lint', 'typecheck', 'test', '--parallel=2', '--output-style=static'],
  ],
  ['e2e', nx, ['run-many', '-t', 'e2e', '--parallel=1', '--output-style=static']],
  // Builds and packs the publishable libs, installs them into fresh Nest apps outside the workspace.
  ['package consumer', process.execPath, [join(root, 'tools', 'package-consumer', 'package-consumer.mjs')]],
];

let ok = true;
for (const [title, command, args] of steps) ok = run(title, command, args) && ok;

const totals = { passed: 0, failed: 0, skipped: 0, runs: 0 };
if (existsSync(results)) {
  for (const file of readdirSync(results)) {
    const run = JSON.parse(readFileSync(join(results, file), 'utf8'));
    totals.passed += run.passed;
    totals.failed += run.failed;
    totals.skipped += run.skipped;
    totals.runs++;
  }
}
if (totals.runs === 0 || totals.passed === 0) ok = false;
console.log(`\n${totals.runs} jest runs`);
console.log(`tests: ${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
process.exit(ok && totals.failed === 0 ? 0 : 1);
