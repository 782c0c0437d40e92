// Real parts for an e2e run: fresh emulators on free ports (in a child process, so an emulator
// fault is reported instead of killing jest), a fresh Postgres database and a Redis key prefix of
// their own. Tests read them from process.env, as the apps do.
const { fork } = require('node:child_process');
const { join } = require('node:path');
const { Client } = require('pg');

const ADMIN_URL = process.env.E2E_POSTGRES_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

function databaseUrl(name) {
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

async function adminQuery(...statements) {
  const client = new Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    for (const statement of statements) await client.query(statement);
  } finally {
    await client.end();
  }
}

function startEmulatorHost(options) {
  const child = fork(join(__dirname, '..', 'scripts', 'emulators.host.mjs'), [JSON.stringify(options)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('emulators did not start within 30 s')), 30_000);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`emulator process exited (${code ?? signal}) before it was ready`));
    });
    child.on('message', (message) => {
      if (!message || !message.ready) return;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      child.on('exit', (code, signal) => {
        if (!child.stopping)
          console.error(`\ne2e: the emulator process died (${code ?? signal}) during the run`);
      });
      resolve({
        ...message.ready,
        async stop() {
          if (child.exitCode !== null || child.signalCode !== null) return;
          child.stopping = true;
          const exited = new Promise((done) => child.once('exit', done));
          if (child.connected) child.send('stop');
          else child.kill('SIGTERM');
          const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
          await exited;
          clearTimeout(kill);
        },
      });
    });
  });
}

module.exports = async function globalSetup(_globalConfig, projectConfig) {
  const project = String(projectConfig.displayName?.name ?? projectConfig.displayName ?? 'once')
    .replace(/[^a-z0-9]+/gi, '_')
    .toLowerCase();
  const emulators = await startEmulatorHost({ visibilityTimeout: 5, maxReceiveCount: 3 });

  // One database per run: two runs of the same suite (two checkouts, a helper) never share one.
  const database = `once_${project}_${process.pid}`;
  await adminQuery(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`, `CREATE DATABASE "${database}"`);
  globalThis.__ONCE_E2E__ = {
    async stop() {
      await emulators.stop();
      if (!process.env.E2E_KEEP_DATABASE) {
        await adminQuery(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`).catch(() => undefined);
      }
    },
  };

  Object.assign(process.env, emulators.env, {
    NODE_ENV: 'test',
    LOG_LEVEL: process.env.E2E_LOG_LEVEL ?? 'warn',
    DATABASE_URL: databaseUrl(database),
    REDIS_URL: process.env.E2E_REDIS_URL ?? 'redis://127.0.0.1:6379',
    REDIS_KEY_PREFIX: `once:${project}:${process.pid}:${Date.now()}:`,
    E2E_QUEUE_URLS: JSON.stringify(emulators.queueUrls),
    // The dedup lease must not outlive the queues' 5 s visibility timeout.
    DEDUP_LEASE_MS: '4000',
  });
};
