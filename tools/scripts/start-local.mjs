#!/usr/bin/env node
// `npm start`: the whole platform on this machine. Starts the SQS and SES emulators (with the
// queues), migrates and seeds Postgres, then runs api, worker and scheduler from source.
// Sent mail shows up at http://127.0.0.1:8005. Ctrl-C stops everything.
import { once } from 'node:events';
import { emulatorEnv, startEmulators } from './emulators.mjs';
import { runSource } from './dev.mjs';

const local = {
  NODE_ENV: 'development',
  LOG_LEVEL: process.env.LOG_LEVEL ?? 'info',
  DATABASE_URL: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
  REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  // A slot every minute, so a newcomer sees today's digest arrive without waiting for 07:00 (later
  // fires of the same day are duplicates: one digest per period). The api gets it too (triggers).
  DIGEST_CRON: process.env.DIGEST_CRON ?? '0 * * * * *',
  PORT: process.env.PORT ?? '3000',
  ADMIN_EMAILS: process.env.ADMIN_EMAILS ?? 'admins@once.local',
};

async function step(title, entry, args, env) {
  console.log(`start: ${title}`);
  const child = runSource(entry, args, { env });
  const [code] = await once(child, 'exit');
  if (code !== 0) throw new Error(`${title} failed (exit ${code})`);
}

const emulators = await startEmulators({
  sqsPort: Number(process.env.FAUXQS_PORT ?? 4566),
  sesPort: Number(process.env.SES_PORT ?? 8005),
});
const env = { ...emulatorEnv(emulators), ...local };
console.log(`start: SQS emulator ${emulators.sqsEndpoint}, SES emulator ${emulators.sesEndpoint}`);

const children = [];
let stopping = false;
async function stop(code) {
  if (stopping) return;
  stopping = true;
  for (const child of children) child.kill('SIGTERM');
  await Promise.all(children.map((child) => (child.exitCode === null ? once(child, 'exit') : null)));
  await emulators.stop();
  process.exit(code);
}
process.on('SIGINT', () => stop(0));
process.on('SIGTERM', () => stop(0));

try {
  await step('migrate', 'apps/api/src/cli/cli.ts', ['migrate'], env);
  await step('seed', 'apps/api/src/cli/cli.ts', ['seed', process.env.SEED_USERS ?? '25'], env);
} catch (error) {
  console.error(`start: ${error.message}`);
  await stop(1);
}

for (const app of ['api', 'worker', 'scheduler']) {
  const child = runSource(`apps/${app}/src/main.ts`, [], { env: { ...env, LOG_PRETTY: 'true' } });
  child.on('exit', (code) => {
    if (!stopping) {
      console.error(`start: ${app} exited with ${code}; stopping`);
      stop(1);
    }
  });
  children.push(child);
}
console.log(
  `start: api http://127.0.0.1:${local.PORT}/health; today's digest goes out at the next minute (DIGEST_CRON=${local.DIGEST_CRON}, one per day);` +
    ` mail appears at ${emulators.sesEndpoint}/ (JSON at /store). Ctrl-C to stop.`,
);
