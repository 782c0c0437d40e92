#!/usr/bin/env node
// Package consumer test (a stage of `npm test`): builds and packs @once/dedup, @once/mail and
// @once/tracking, installs the tarballs into two fresh Nest 11 apps outside the workspace and runs
// them against fauxqs and the local Redis.
//   1. sqs-consumer: all three packages; an @Idempotent @SqsMessageHandler gets three copies of one
//      event and must run its effect once (it also touches @once/dedup/sqs, @once/dedup/typeorm,
//      @once/mail and @once/tracking).
//   2. redis-only: only @once/dedup and ioredis; IdempotencyService.run three times, one effect,
//      and typeorm must not be installed.
// `--sabotage=<kind>` shows that it fails: `drop-file` (the dedup tarball lacks its Redis store),
// `no-dedup` (DEDUP_ENABLED=false: the consumer runs with DedupModule `enabled: false`, the redis-only
// app calls its function bare, so every copy or call runs its effect).
// `--keep` leaves the temp dir. Exit code 0 only when every check passed.
import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { startFauxqs } from 'fauxqs';
import Redis from 'ioredis';
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createQueueWithDlq, LOCAL_CREDENTIALS } from '../scripts/emulators.mjs';

const root = new URL('../..', import.meta.url).pathname;
const here = new URL('.', import.meta.url).pathname;
const args = process.argv.slice(2);
const sabotage = args.find((arg) => arg.startsWith('--sabotage='))?.split('=')[1];
const keep = args.includes('--keep');
const LIBS = ['dedup', 'mail', 'tracking'];
const started = Date.now();
// Node 20 is this project's runtime; the SDK's notice about its future Node 22 floor is noise here.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const seconds = (from) => `${((Date.now() - from) / 1000).toFixed(1)} s`;

const checks = [];
function check(what, ok, detail = '') {
  checks.push({ what, ok });
  console.log(`  ${ok ? 'ok  ' : 'FAIL'} ${what}${detail ? `: ${detail}` : ''}`);
}

async function stage(title, fn) {
  const from = Date.now();
  console.log(`\n--- ${title}`);
  const value = await fn();
  console.log(`--- ${title}: ${seconds(from)}`);
  return value;
}

// The child npm must not take `npm test`'s package and prefix for its own (the cache and registry settings stay).
const cleanEnv = Object.fromEntries(
  Object.entries(process.env).filter(
    ([key]) => !/^(npm_package_|npm_lifecycle_|npm_config_local_prefix$|INIT_CWD$)/i.test(key),
  ),
);
const childEnv = {
  ...cleanEnv,
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  npm_config_audit: 'false',
  npm_config_fund: 'false',
  npm_config_update_notifier: 'false',
  npm_config_loglevel: 'error',
};

function runSync(command, commandArgs, cwd) {
  const result = spawnSync(command, commandArgs, { cwd, env: childEnv, encoding: 'utf8' });
  if (result.status !== 0) {
    throw new Error(
      `${command} ${commandArgs.join(' ')} (in ${cwd}) exited ${result.status}\n${result.stdout}${result.stderr}`,
    );
  }
  return result.stdout;
}

function runAsync(command, commandArgs, cwd, env = childEnv) {
  return new Promise((resolve) => {
    const child = spawn(command, commandArgs, { cwd, env });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    child.on('close', (status) => resolve({ status, output }));
  });
}

// Exact versions from the workspace lock, so the npm cache `npm ci` filled answers offline.
const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8'));
const pinned = (name) => {
  const version = lock.packages[`node_modules/${name}`]?.version;
  if (!version) throw new Error(`${name} is not in package-lock.json`);
  return `${name}@${version}`;
};

const work = mkdtempSync(join(tmpdir(), 'once-package-consumer-'));
const runId = randomUUID().slice(0, 8);
const keyPrefix = `once:package-consumer:${runId}:`;
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
let fauxqs;

try {
  console.log(`package consumer test: temp dir ${work}, Redis key prefix ${keyPrefix}`);
  if (sabotage) console.log(`SABOTAGE: ${sabotage} (this run is expected to fail)`);

  await stage('build', () => {
    runSync(
      join(root, 'node_modules', '.bin', 'nx'),
      ['run-many', '-t', 'build', '-p', ...LIBS, '--output-style=static'],
      root,
    );
  });

  // What the built main entry of @once/dedup loads at runtime (module cache after require).
  await stage('main entry of @once/dedup', () => {
    const probe = `require('reflect-metadata'); require('./dist/libs/dedup/src/index.js');
      const heavy = ['typeorm', 'ioredis', '@ssut/nestjs-sqs', '@aws-sdk/client-sqs'];
      console.log(JSON.stringify(heavy.filter((name) => Object.keys(require.cache).some((file) => file.includes('/node_modules/' + name + '/')))));`;
    const loads = JSON.parse(runSync(process.execPath, ['-e', probe], root));
    check(
      'does not load typeorm',
      !loads.includes('typeorm'),
      `loads ${loads.join(', ') || 'no optional peer'}`,
    );
    check('does not load ioredis (the app passes its client)', !loads.includes('ioredis'));
    check('does not load @ssut/nestjs-sqs', !loads.includes('@ssut/nestjs-sqs'));
    check(
      'does not load @aws-sdk/client-sqs (the SQS adapter loads on first use)',
      !loads.includes('@aws-sdk/client-sqs'),
    );
    return loads;
  });

  const tarballs = await stage('pack', () => {
    if (sabotage === 'drop-file') rmSync(join(root, 'dist/libs/dedup/src/lib/stores/redis.store.js'));
    const files = {};
    for (const lib of LIBS) {
      const out = runSync(
        'npm',
        ['pack', '--json', '--pack-destination', work],
        join(root, 'dist/libs', lib),
      );
      const [info] = JSON.parse(out);
      files[lib] = join(work, info.filename);
      const paths = info.files.map((file) => file.path);
      const unwanted = paths.filter(
        (path) =>
          /(\.spec\.|\.e2e-spec\.|(^|\/)test\/|\.map$)/.test(path) ||
          (/\.ts$/.test(path) && !/\.d\.ts$/.test(path)),
      );
      console.log(
        `  @once/${lib}: ${info.entryCount} files, ${(info.size / 1024).toFixed(1)} kB packed, ${(info.unpackedSize / 1024).toFixed(1)} kB unpacked`,
      );
      check(
        `@once/${lib} tarball has no tests, specs, sources or maps`,
        unwanted.length === 0,
        unwanted.slice(0, 5).join(', '),
      );
      for (const entry of [
        'package.json',
        'LICENSE',
        'README.md',
        'CHANGELOG.md',
        'src/index.js',
        'src/index.d.ts',
      ])
        check(`@once/${lib} tarball has ${entry}`, paths.includes(entry));
    }
    return files;
  });

  const nest = ['@nestjs/common', '@nestjs/core', 'reflect-metadata', 'rxjs'].map(pinned);
  const toolchain = ['typescript', '@types/node'].map(pinned);
  const sqsPeers = ['@ssut/nestjs-sqs', '@aws-sdk/client-sqs'].map(pinned);
  const apps = {
    'sqs-consumer': [
      ...Object.values(tarballs),
      ...nest,
      ...toolchain,
      ...sqsPeers,
      ...['ioredis', 'typeorm', '@nestjs/typeorm', '@aws-sdk/client-sesv2'].map(pinned),
    ],
    'redis-only': [tarballs.dedup, ...nest, ...toolchain, pinned('ioredis')],
  };

  await stage('create apps and npm install --prefer-offline', async () => {
    const installs = Object.entries(apps).map(async ([app, deps]) => {
      const dir = join(work, app);
      cpSync(join(here, 'apps', app), dir, { recursive: true });
      writeFileSync(
        join(dir, 'package.json'),
        JSON.stringify({ name: `once-${app}`, private: true, license: 'MIT' }, null, 2),
      );
      const from = Date.now();
      const { status, output } = await runAsync(
        'npm',
        ['install', '--prefer-offline', '--no-package-lock', ...deps],
        dir,
      );
      check(
        `${app}: npm install (${deps.length} packages asked)`,
        status === 0,
        `${seconds(from)}${status === 0 ? '' : `\n${output}`}`,
      );
      if (status !== 0) throw new Error(`npm install failed in ${app}`);
    });
    await Promise.all(installs);
  });

  await stage('compile each app with its own tsc', async () => {
    const compiles = Object.keys(apps).map(async (app) => {
      const dir = join(work, app);
      const { status, output } = await runAsync(
        process.execPath,
        [join(dir, 'node_modules/typescript/bin/tsc'), '-p', dir],
        dir,
      );
      check(`${app}: tsc`, status === 0, status === 0 ? '' : output.trim());
      if (status !== 0) throw new Error(`tsc failed in ${app}`);
    });
    await Promise.all(compiles);
  });

  const appEnv = {
    ...childEnv,
    REDIS_URL: redisUrl,
    ...(sabotage === 'no-dedup' ? { DEDUP_ENABLED: 'false' } : {}),
  };
  async function runApp(app, env) {
    const { status, output } = await runAsync(
      process.execPath,
      [join(work, app, 'dist/main.js')],
      join(work, app),
      env,
    );
    const line = output.split('\n').find((text) => text.startsWith('RESULT '));
    check(
      `${app}: exited 0 with a result`,
      status === 0 && Boolean(line),
      status === 0 && line ? '' : output.trim(),
    );
    if (!line) throw new Error(`${app} printed no result`);
    const result = JSON.parse(line.slice('RESULT '.length));
    console.log(`  ${app} result ${JSON.stringify(result)}`);
    return result;
  }

  await stage('sqs-consumer: 3 copies of one event through fauxqs', async () => {
    fauxqs = await startFauxqs({ port: 0, logger: false, defaultRegion: 'us-east-1' });
    const endpoint = `http://127.0.0.1:${fauxqs.port}`;
    const sqs = new SQSClient({ region: 'us-east-1', endpoint, credentials: LOCAL_CREDENTIALS });
    const { url, dlqUrl } = await createQueueWithDlq(sqs, `package-consumer-${runId}`, {
      visibilityTimeout: 5,
    });
    const body = JSON.stringify({ eventId: `order-${runId}`, total: 42 });
    const sent = await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: url,
        Entries: [1, 2, 3].map((n) => ({ Id: `copy-${n}`, MessageBody: body })),
      }),
    );
    check('sqs-consumer: 3 copies sent', sent.Successful?.length === 3);
    sqs.destroy();
    const result = await runApp('sqs-consumer', {
      ...appEnv,
      SQS_ENDPOINT: endpoint,
      QUEUE_URL: url,
      DLQ_URL: dlqUrl,
      KEY_PREFIX: `${keyPrefix}sqs:`,
    });
    check('sqs-consumer: queue drained', result.drained === true);
    check(
      'sqs-consumer: every copy was delivered',
      result.deliveries >= 3,
      `${result.deliveries} deliveries`,
    );
    check('sqs-consumer: exactly 1 effect', result.effects === 1, `${result.effects} effects`);
    check('sqs-consumer: nothing dead-lettered', result.dlq === 0, `${result.dlq} in the DLQ`);
    check(
      '@once/dedup/sqs and @once/dedup/typeorm load',
      result.subpaths?.sqs === true && result.subpaths?.typeorm?.[0] === 'DedupRecord',
    );
    check(
      'sqs-consumer: @once/mail and @once/tracking load',
      result.mail === 'ada@example.com' && result.tracking > 0,
    );
  });

  await stage('redis-only: IdempotencyService.run x3', async () => {
    const result = await runApp('redis-only', { ...appEnv, KEY_PREFIX: `${keyPrefix}redis-only:` });
    check('redis-only: 3 calls', result.calls === 3);
    check('redis-only: exactly 1 effect', result.effects === 1, `${result.effects} effects`);
    check(
      'every call got the first answer',
      result.answers?.every((answer) => answer.effect === 1),
    );
    check("redis-only: require.resolve('typeorm') fails", result.resolvable?.typeorm === false);
    check('redis-only: @nestjs/typeorm not installed', result.resolvable?.['@nestjs/typeorm'] === false);
    check('redis-only: typeorm not loaded', result.loaded?.typeorm === false);
    check('redis-only: @ssut/nestjs-sqs not installed', result.resolvable?.['@ssut/nestjs-sqs'] === false);
    check(
      'redis-only: @aws-sdk/client-sqs not installed',
      result.resolvable?.['@aws-sdk/client-sqs'] === false,
    );
  });
} catch (error) {
  check('run completed', false, error instanceof Error ? error.message : String(error));
} finally {
  await fauxqs?.stop().catch(() => undefined);
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1, lazyConnect: true });
  try {
    let cursor = '0';
    let removed = 0;
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${keyPrefix}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length) removed += await redis.del(...keys);
    } while (cursor !== '0');
    console.log(`\nremoved ${removed} Redis keys under ${keyPrefix}`);
  } catch {
    // Redis down: the checks above already failed.
  }
  redis.disconnect();
  if (keep) console.log(`kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}

const failed = checks.filter((c) => !c.ok);
console.log(
  `\npackage consumer: ${checks.length - failed.length} checks passed, ${failed.length} failed in ${seconds(started)}`,
);
for (const c of failed) console.log(`  failed: ${c.what}`);
process.exit(failed.length === 0 && checks.length > 0 ? 0 : 1);
