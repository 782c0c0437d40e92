// Real parts for an e2e run: fresh emulators on free ports, a fresh Postgres database and a Redis
// key prefix of its own. Tests read them from process.env, as the apps do.
const { Client } = require('pg');

const ADMIN_URL = process.env.E2E_POSTGRES_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

function databaseUrl(name) {
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

async function recreateDatabase(name) {
  const client = new Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await client.query(`CREATE DATABASE "${name}"`);
  } finally {
    await client.end();
  }
}

module.exports = async function globalSetup(_globalConfig, projectConfig) {
  const { startEmulators, emulatorEnv } = await import('../scripts/emulators.mjs');
  const project = String(projectConfig.displayName?.name ?? projectConfig.displayName ?? 'once')
    .replace(/[^a-z0-9]+/gi, '_')
    .toLowerCase();
  const emulators = await startEmulators({
    sqsPort: 0,
    sesPort: 0,
    visibilityTimeout: 5,
    maxReceiveCount: 3,
  });
  globalThis.__ONCE_EMULATORS__ = emulators;

  const database = `once_${project}`;
  await recreateDatabase(database);

  Object.assign(process.env, emulatorEnv(emulators), {
    NODE_ENV: 'test',
    LOG_LEVEL: process.env.E2E_LOG_LEVEL ?? 'warn',
    DATABASE_URL: databaseUrl(database),
    REDIS_URL: process.env.E2E_REDIS_URL ?? 'redis://127.0.0.1:6379',
    REDIS_KEY_PREFIX: `once:${project}:${Date.now()}:`,
    E2E_QUEUE_URLS: JSON.stringify(emulators.queueUrls),
  });
};
