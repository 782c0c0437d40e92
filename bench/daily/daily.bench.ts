import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { encodeTarget, signLink } from '@once/tracking';
import autocannon from 'autocannon';
import { startEmulatorHost } from '../../tools/chaos/emulator.host';
import { freePort, until } from '../../tools/chaos/net.util';
import { dropDatabase, recreateDatabase } from '../../tools/chaos/postgres.database';
import { RedisInstance } from '../../tools/chaos/redis.instance';
import {
  killSpawned,
  ROOT,
  runSourceToEnd,
  sourceEnv,
  spawnSource,
  stopProcess,
} from '../../tools/chaos/source.process';

const SECRET = 'daily-bench-secret-0123456789abcdef0123456789';
const TARGET = '/updates/haml-3.1.2/haml-3.2.0.rc.3/11765/';
const CAMPAIGN = 'Daily_Notification';

const arg = (name: string, fallback: number) => {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? Number(process.argv[at + 1]) : fallback;
};

interface Round {
  target: 'api' | 'bare';
  method: 'GET' | 'HEAD';
  rps: number;
  p50: number;
  p99: number;
  non3xx: number;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;
const range = (values: number[]) =>
  `${median(values).toFixed(2)} (${Math.min(...values).toFixed(2)}–${Math.max(...values).toFixed(2)})`;

/**
 * `npm run bench:daily`: `GET`/`HEAD /daily/` on the api (production logging: `warn`, JSON) against
 * a bare Express 5 app answering the same 302, with autocannon (`--connections`, default 50),
 * `--rounds` (default 3) interleaved rounds of `--seconds` (default 5) per target and method.
 */
async function main(): Promise<void> {
  const connections = arg('connections', 50);
  const rounds = arg('rounds', 3);
  const seconds = arg('seconds', 5);
  const runDir = join(ROOT, 'tmp', 'bench-daily', new Date().toISOString().replace(/[:.]/g, '-'));
  const host = await startEmulatorHost({ visibilityTimeout: 30, maxReceiveCount: 5, queues: ['once-jobs'] });
  const redis = await RedisInstance.start('none');
  const database = `once_bench_daily_${process.pid}`;
  try {
    const databaseUrl = await recreateDatabase(database);
    const env: Record<string, string> = {
      ...host.env,
      // The production logging configuration (warn, JSON); `production` itself refuses the emulators' short keys.
      NODE_ENV: 'test',
      LOG_LEVEL: 'warn',
      LOG_PRETTY: 'false',
      DATABASE_URL: databaseUrl,
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: 'once:daily-bench:',
      SQS_JOBS_QUEUE: 'once-jobs',
      ADMIN_TOKENS: 'daily-bench-admin-token-0123456789abcdef',
      TRACKING_SECRETS: SECRET,
      TRACKING_BASE_URL: 'https://site.example',
    };
    await runSourceToEnd('apps/api/src/cli/cli.ts', ['migrate'], { env, logFile: join(runDir, 'cli.log') });
    const apiPort = await freePort();
    const api = spawnSource('apps/api/src/main.ts', [], {
      // DAILY_CPU_PROF_DIR: the api's CPU profile of its first measured round (bench/pipeline's preload).
      env: {
        ...env,
        PORT: String(apiPort),
        ...(process.env.DAILY_CPU_PROF_DIR
          ? {
              NODE_OPTIONS: `--require ${join(ROOT, 'bench/pipeline/cpu-profile.preload.js')}`,
              BENCH_CPU_PROF_DIR: process.env.DAILY_CPU_PROF_DIR,
            }
          : {}),
      },
      logFile: join(runDir, 'api.log'),
    });
    await until(
      'the api answering',
      async () =>
        (await fetch(`http://127.0.0.1:${apiPort}/health/live`).catch(() => undefined))?.ok === true,
      { timeoutMs: 60_000 },
    );
    const path = `/daily/?${encodeTarget(TARGET)}&c=${CAMPAIGN}&r=11765&s=${signLink(SECRET, { target: TARGET, campaign: CAMPAIGN, recipientId: '11765' })}`;
    const location = (await fetch(`http://127.0.0.1:${apiPort}${path}`, { redirect: 'manual' })).headers.get(
      'location',
    );
    if (!location) throw new Error('the api did not redirect the bench link');
    const bare = spawn(
      process.execPath,
      ['-r', '@swc-node/register', 'bench/daily/bare-redirect.server.ts'],
      {
        cwd: ROOT,
        env: sourceEnv({ BARE_LOCATION: location }),
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const barePort = await new Promise<number>((resolve, reject) => {
      bare.stdout?.on('data', (chunk: Buffer) => {
        const match = /listening (\d+)/.exec(chunk.toString());
        if (match) resolve(Number(match[1]));
      });
      bare.once('exit', () => reject(new Error('the bare server exited')));
    });

    const results: Round[] = [];
    // HEAD is left out: autocannon 9 waits for a body after a HEAD answer, so it counts none.
    const cases: { target: 'api' | 'bare'; method: 'GET' | 'HEAD' }[] = [
      { target: 'bare', method: 'GET' },
      { target: 'api', method: 'GET' },
    ];
    for (const c of cases) {
      // warm-up
      await autocannon({
        url: `http://127.0.0.1:${c.target === 'api' ? apiPort : barePort}${path}`,
        method: c.method,
        connections,
        duration: 1,
      });
    }
    for (let round = 0; round < rounds; round++) {
      for (let i = 0; i < cases.length; i++) {
        const c = cases[(i + round) % cases.length] as (typeof cases)[number];
        const profiled = process.env.DAILY_CPU_PROF_DIR && round === 0 && c.target === 'api';
        if (profiled) api.child.kill('SIGWINCH');
        const result = await autocannon({
          url: `http://127.0.0.1:${c.target === 'api' ? apiPort : barePort}${path}`,
          method: c.method,
          connections,
          duration: seconds,
        });
        if (profiled) api.child.kill('SIGWINCH');
        results.push({
          ...c,
          rps: result.requests.average,
          p50: result.latency.p50,
          p99: result.latency.p99,
          non3xx: result['4xx'] + result['5xx'] + result.errors + result.timeouts,
        });
        process.stderr.write(
          `[daily] round ${round + 1} ${c.target} ${c.method}: ${Math.round(result.requests.average)} req/s, p99 ${result.latency.p99} ms\n`,
        );
      }
    }
    const of = (target: string, method: string) =>
      results.filter((r) => r.target === target && r.method === method);
    console.log(
      `\n/daily/ under autocannon, ${connections} connections, ${rounds} interleaved rounds of ${seconds} s\n`,
    );
    console.log(
      '| method | api req/s | bare req/s | api ÷ bare | api p50 / p99 ms | bare p50 / p99 ms | p99 api ÷ bare |',
    );
    console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const method of ['GET']) {
      const a = of('api', method);
      const b = of('bare', method);
      const ratios = a.map((r, k) => r.rps / (b[k]?.rps ?? NaN));
      const p99 = a.map((r, k) => r.p99 / (b[k]?.p99 ?? NaN));
      console.log(
        `| ${method} | ${Math.round(median(a.map((r) => r.rps)))} | ${Math.round(median(b.map((r) => r.rps)))} | ${range(ratios)} | ${median(a.map((r) => r.p50))} / ${median(a.map((r) => r.p99))} | ${median(b.map((r) => r.p50))} / ${median(b.map((r) => r.p99))} | ${range(p99)} |`,
      );
    }
    bare.kill('SIGTERM');
    await stopProcess(api, 10_000);
  } finally {
    killSpawned();
    await redis.stop();
    await host.stop();
    await dropDatabase(database).catch(() => undefined);
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    killSpawned();
    process.exit(1);
  },
);
