import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { TcpOutageProxy } from '@once/testing';
import { encodeTarget, signLink } from '@once/tracking';
import Redis from 'ioredis';
import { startEmulatorHost } from './emulator.host';
import { freePort, sleep, until } from './net.util';
import { dropDatabase, recreateDatabase, withDatabase } from './postgres.database';
import { RedisInstance } from './redis.instance';
import { ROOT, runSourceToEnd, type SourceProcess, spawnSource, stopProcess } from './source.process';

const SECRET = 'click-faults-secret-0123456789abcdef01234567';
const TARGET = '/updates/haml-3.1.2/haml-3.2.0.rc.3/11765/';
const CAMPAIGN = 'Daily_Notification';

export interface ClickFaultOptions {
  /** Requests per second offered to `GET /daily/` (paced every 10 ms). */
  rate: number;
  /** Keep-alive connections the load uses at most. */
  connections: number;
  /** Load before the outage, during it (Postgres cut off behind a proxy; 0: none) and after it. */
  steadyMs: number;
  outageMs: number;
  afterMs: number;
  /** How the api ends: SIGTERM (graceful) or SIGKILL while the load still runs. */
  ending: 'sigterm' | 'sigkill';
  database: string;
  log?: (message: string) => void;
}

export interface ClickFaultReport {
  options: Omit<ClickFaultOptions, 'log'>;
  /** Requests answered 302 (each one a click the api recorded). */
  redirected: number;
  /** Requests answered otherwise, or not at all (refused, reset by the kill). */
  failed: number;
  /** Redirects per second actually served over the load. */
  achievedRate: number;
  /** Rows in `tracking_clicks` once everything settled (a second api drains what the first spilled). */
  rows: number;
  /** redirected − rows: clicks answered but never written. */
  lost: number;
  /** The most clicks the Redis spill held (sampled every 100 ms). */
  spillPeak: number;
  /** Redirect latency over the load, ms. */
  p50Ms: number;
  p99Ms: number;
}

interface Load {
  stop(): Promise<void>;
  readonly redirected: number;
  readonly failed: number;
  readonly latencies: number[];
}

/** Paced GETs of signed seed-shaped links (a thousand recipients, cycled) over keep-alive connections. */
function startLoad(port: number, rate: number, connections: number): Load {
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const links = Array.from(
    { length: 1000 },
    (_, i) =>
      `/daily/?${encodeTarget(TARGET)}&c=${CAMPAIGN}&r=${i}&s=${signLink(SECRET, { target: TARGET, campaign: CAMPAIGN, recipientId: String(i) })}`,
  );
  const state = { redirected: 0, failed: 0, latencies: [] as number[], inFlight: 0, next: 0 };
  const one = () =>
    new Promise<void>((resolve) => {
      const started = performance.now();
      state.inFlight++;
      const req = request(
        { host: '127.0.0.1', port, path: links[state.next++ % links.length], agent, method: 'GET' },
        (res) => {
          res.resume();
          res.on('end', () => {
            state.inFlight--;
            if (res.statusCode === 302) {
              state.redirected++;
              state.latencies.push(performance.now() - started);
            } else state.failed++;
            resolve();
          });
        },
      );
      req.on('error', () => {
        state.inFlight--;
        state.failed++;
        resolve();
      });
      req.end();
    });
  const pending = new Set<Promise<void>>();
  let carry = 0;
  const timer = setInterval(() => {
    carry += rate / 100;
    for (; carry >= 1; carry--) {
      if (state.inFlight >= connections * 4) continue; // the api cannot keep up: not offered
      const call = one();
      pending.add(call);
      void call.then(() => pending.delete(call));
    }
  }, 10);
  return {
    async stop() {
      clearInterval(timer);
      await Promise.all(pending);
      agent.destroy();
    },
    get redirected() {
      return state.redirected;
    },
    get failed() {
      return state.failed;
    },
    latencies: state.latencies,
  };
}

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
};

/**
 * One run: an api from source with Postgres behind a proxy and its own Redis, a paced load of
 * valid links, an optional Postgres outage, then SIGTERM or SIGKILL under load. A second api then
 * boots on the same database and Redis and drains what the first left in the spill; every click
 * answered 302 should be a row.
 */
export async function runClickFaults(options: ClickFaultOptions): Promise<ClickFaultReport> {
  const log = options.log ?? (() => undefined);
  const runDir = join(ROOT, 'tmp', 'click-faults', new Date().toISOString().replace(/[:.]/g, '-'));
  const host = await startEmulatorHost({ visibilityTimeout: 30, maxReceiveCount: 5, queues: ['once-jobs'] });
  const redis = await RedisInstance.start('none');
  const proxy = new TcpOutageProxy(5432);
  const spill = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  const apis: SourceProcess[] = [];
  try {
    const databaseUrl = await recreateDatabase(options.database);
    const env: Record<string, string> = {
      ...host.env,
      NODE_ENV: 'test',
      LOG_LEVEL: 'warn',
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: 'once:clicks:',
      SQS_JOBS_QUEUE: 'once-jobs',
      TRACKING_SECRETS: SECRET,
      TRACKING_BASE_URL: 'https://site.example',
    };
    await runSourceToEnd('apps/api/src/cli/cli.ts', ['migrate'], {
      env: { ...env, DATABASE_URL: databaseUrl },
      logFile: join(runDir, 'cli.log'),
    });
    const proxyUrl = new URL(databaseUrl);
    proxyUrl.port = String(await proxy.start());
    const boot = async (label: string) => {
      const port = await freePort();
      const api = spawnSource('apps/api/src/main.ts', [], {
        env: { ...env, DATABASE_URL: proxyUrl.toString(), PORT: String(port) },
        logFile: join(runDir, `${label}.log`),
      });
      apis.push(api);
      await until(
        `${label} answering`,
        async () => (await fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined))?.ok === true,
        { timeoutMs: 60_000, intervalMs: 200 },
      );
      return { api, port };
    };
    const first = await boot('api-1');
    log(`api up on ${first.port}; load ${options.rate}/s`);

    let spillPeak = 0;
    const sampler = setInterval(() => {
      void spill
        .xlen('once:clicks:tracking:clicks')
        .then((length) => (spillPeak = Math.max(spillPeak, length)))
        .catch(() => undefined);
    }, 100);
    const load = startLoad(first.port, options.rate, options.connections);
    const loadStarted = Date.now();
    await sleep(options.steadyMs);
    if (options.outageMs > 0) {
      log(`Postgres cut off for ${options.outageMs} ms`);
      proxy.cut();
      await sleep(options.outageMs);
      proxy.restore();
      log('Postgres back');
    }
    await sleep(options.afterMs);
    if (options.ending === 'sigkill') {
      first.api.child.kill('SIGKILL');
      await first.api.exited;
      await load.stop();
    } else {
      await load.stop();
      await stopProcess(first.api, 30_000);
    }
    const loadMs = Date.now() - loadStarted;
    log(`api-1 ended (${options.ending}); ${load.redirected} redirects, ${load.failed} failed`);

    // A second api drains what the first spilled (at its boot it looks at the stream).
    const second = await boot('api-2');
    const count = () =>
      withDatabase(databaseUrl, async (db) =>
        Number((await db.query('SELECT count(*) AS n FROM tracking_clicks'))[0].n),
      );
    let rows = await count();
    for (let stable = 0; stable < 3;) {
      await sleep(500);
      const now = await count();
      const spilled = await spill.xlen('once:clicks:tracking:clicks');
      stable = now === rows && spilled === 0 ? stable + 1 : 0;
      rows = now;
    }
    clearInterval(sampler);
    await stopProcess(second.api, 30_000);
    const { log: _log, ...rest } = options;
    return {
      options: rest,
      redirected: load.redirected,
      failed: load.failed,
      achievedRate: Math.round((load.redirected / loadMs) * 1000),
      rows,
      lost: load.redirected - rows,
      spillPeak,
      p50Ms: Number(percentile(load.latencies, 50).toFixed(1)),
      p99Ms: Number(percentile(load.latencies, 99).toFixed(1)),
    };
  } finally {
    for (const api of apis) if (api.running()) api.child.kill('SIGKILL');
    await proxy.stop();
    spill.disconnect();
    await redis.stop();
    await host.stop();
    await dropDatabase(options.database).catch(() => undefined);
  }
}
