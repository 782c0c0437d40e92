#!/usr/bin/env node
// The test command (`npm test`): format check, lint, type-check and unit tests through Nx in
// parallel, then every e2e suite one project at a time (they share the machine's two cores), with
// the scheduler's beside them (its real cron timers mostly wait), then the package consumer test
// (tools/package-consumer), then one closing line with the totals of every jest run.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';

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

const report = (title, status, started) =>
  console.log(
    `=== ${title}: ${status === 0 ? 'ok' : `FAILED (exit ${status})`} in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );

function run(title, command, args) {
  console.log(`\n=== ${title}: ${command} ${args.join(' ')}`);
  const started = Date.now();
  const { status } = spawnSync(command, args, { cwd: root, env, stdio: 'inherit' });
  report(title, status, started);
  return status === 0;
}

/** Starts a step in the background; its output is printed whole when it ends (not interleaved). */
function runBeside(title, command, args) {
  const started = Date.now();
  const child = spawn(command, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const output = [];
  child.stdout.on('data', (chunk) => output.push(chunk));
  child.stderr.on('data', (chunk) => output.push(chunk));
  const ended = new Promise((resolve) => child.on('close', (code) => resolve(code)));
  return async () => {
    const status = await ended;
    console.log(`\n=== ${title} (ran beside the e2e step): ${command} ${args.join(' ')}`);
    process.stdout.write(Buffer.concat(output));
    report(title, status, started);
    return status === 0;
  };
}

const nx = join(root, 'node_modules', '.bin', 'nx');
const steps = [
  ['format', join(root, 'node_modules', '.bin', 'prettier'), ['--check', '--log-level', 'warn', '.']],
  [
    'lint, typecheck, unit',
    nx,
    ['run-many', '-t', 'lint', 'typecheck', 'test', '--parallel=2', '--output-style=static'],
  ],
  ['e2e', nx, ['run-many', '-t', 'e2e', '--parallel=1', '--exclude=scheduler', '--output-style=static']],
  // Builds and packs the publishable libs, installs them into fresh Nest apps outside the workspace.
  ['package consumer', process.execPath, [join(root, 'tools', 'package-consumer', 'package-consumer.mjs')]],
];

let ok = true;
let scheduler;
for (const [title, command, args] of steps) {
  if (title === 'e2e')
    scheduler = runBeside('scheduler e2e', nx, ['run', 'scheduler:e2e', '--output-style=static']);
  ok = run(title, command, args) && ok;
  if (title === 'e2e') ok = (await scheduler()) && ok;
}

const totals = { passed: 0, failed: 0, skipped: 0, runs: 0 };
const failures = [];
if (existsSync(results)) {
  for (const file of readdirSync(results)) {
    const run = JSON.parse(readFileSync(join(results, file), 'utf8'));
    totals.passed += run.passed;
    totals.failed += run.failed;
    totals.skipped += run.skipped;
    totals.runs++;
    for (const failure of run.failures ?? []) failures.push(`${basename(run.rootDir)}: ${failure}`);
  }
}
if (totals.runs === 0 || totals.passed === 0) ok = false;
console.log(`\n${totals.runs} jest runs`);
for (const failure of failures) console.log(`failed: ${failure}`);
console.log(`tests: ${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
process.exit(ok && totals.failed === 0 ? 0 : 1);
