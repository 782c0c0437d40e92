import { execFileSync } from 'node:child_process';
import { freemem, totalmem, cpus } from 'node:os';
import { join } from 'node:path';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import Redis from 'ioredis';
import type { JobMessage } from '@once/platform';
import { createTestQueue } from '@once/testing';
import { startEmulatorHost } from '../../tools/chaos/emulator.host';
import { SesFaultProxy, SqsFaultProxy } from '../../tools/chaos/fault.proxy';
import { sleep } from '../../tools/chaos/net.util';
import {
  dropDatabase,
  recreateDatabase,
  tableExists,
  withDatabase,
} from '../../tools/chaos/postgres.database';
import { RedisInstance } from '../../tools/chaos/redis.instance';
import { SeededRandom } from '../../tools/chaos/seeded.random';
import { cpuSeconds, killSpawned, ROOT, runSourceToEnd } from '../../tools/chaos/source.process';
import { WorkerFleet } from '../../tools/chaos/worker.fleet';

interface BenchOptions {
  users: number;
  workerCounts: number[];
  /** Rounds over every configuration (order alternates), averaged. */
  repeat: number;
  /** `MAIL_MAX_SEND_RATE`: high by default so the SES account's 200/s does not cap what is measured. */
  maxSendRate: number;
  runTimeoutMs: number;
  database: string;
}

interface RunResult {
  workers: number;
  dedup: boolean;
  emails: number;
  duplicates: number;
  /** Fire (job sent) → the N-th email accepted by SES. */
  fireToLastMs: number;
  /** First → N-th email accepted: the steady-state rate, without the fan-out's head start. */
  firstToLastMs: number;
  peakRssMib: number[];
  /** CPU seconds used during the run: all workers together, the emulator process, this process (proxies). */
  cpu: { workers: number; emulators: number; harness: number };
  dedupRecords: number;
  dedupRedisKeys: number;
  completed: boolean;
}

function parseArgs(argv: readonly string[]): BenchOptions {
  const options: BenchOptions = {
    users: 2000,
    workerCounts: [2, 4],
    repeat: 2,
    maxSendRate: 100_000,
    runTimeoutMs: 60_000,
    database: 'once_bench_pipeline',
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s, 2);
    const value = inline ?? argv[++i];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (flag === '--users') options.users = Number(value);
    else if (flag === '--workers') options.workerCounts = value.split(',').map(Number);
    else if (flag === '--repeat') options.repeat = Number(value);
    else if (flag === '--max-send-rate') options.maxSendRate = Number(value);
    else if (flag === '--run-timeout') options.runTimeoutMs = Number(value) * 1000;
    else
      throw new Error(
        `unknown flag ${flag}\nusage: npm run bench:pipeline -- [--users 2000] [--workers 2,4] [--repeat 2] [--max-send-rate 100000] [--run-timeout 60]`,
      );
  }
  if (!Number.isInteger(options.users) || options.users < 1)
    throw new Error('--users must be a whole number');
  if (!Number.isInteger(options.repeat) || options.repeat < 1)
    throw new Error('--repeat must be a whole number');
  if (options.workerCounts.some((count) => !Number.isInteger(count) || count < 1))
    throw new Error('--workers must list whole numbers, e.g. 2,4');
  return options;
}

async function countDedupRedisKeys(url: string): Promise<number> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  try {
    let cursor = '0';
    let count = 0;
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', '*dedup*', 'COUNT', 1000);
      cursor = next;
      count += keys.length;
    } while (cursor !== '0');
    return count;
  } finally {
    redis.disconnect();
  }
}

/** `<prefix>-jobs` and `<prefix>-send-email`, each with a DLQ; names (for the workers) and URLs. */
async function createQueues(
  sqs: SQSClient,
  prefix: string,
): Promise<{ jobs: string; email: string; jobsUrl: string }> {
  const create = async (name: string) =>
    (await createTestQueue(sqs, name, { visibilityTimeout: 30, maxReceiveCount: 5 })).url;
  const jobsUrl = await create(`${prefix}-jobs`);
  await create(`${prefix}-send-email`);
  return { jobs: `${prefix}-jobs`, email: `${prefix}-send-email`, jobsUrl };
}

function machine(): string {
  const nproc = execFileSync('nproc').toString().trim();
  const model = cpus()[0]?.model ?? 'unknown CPU';
  const gib = (bytes: number) => (bytes / 1024 ** 3).toFixed(1);
  return `${nproc} cores (${model}), ${gib(totalmem())} GiB RAM (${gib(freemem())} GiB free), Node ${process.version}`;
}

/**
 * Emails per second from firing a digest to the SES emulator, with `DEDUP_ENABLED` on and off,
 * for each worker count, every run on fresh queues and a fresh slot: `npm run bench:pipeline`.
 */
async function main(options: BenchOptions): Promise<number> {
  const started = Date.now();
  const log = (message: string) =>
    process.stderr.write(`[bench ${((Date.now() - started) / 1000).toFixed(1)}s] ${message}\n`);
  const runDir = join(ROOT, 'tmp', 'bench-pipeline', new Date(started).toISOString().replace(/[:.]/g, '-'));
  const host = await startEmulatorHost({ visibilityTimeout: 30, maxReceiveCount: 5, queues: [] });
  const redis = await RedisInstance.start('none');
  const results: RunResult[] = [];
  try {
    const databaseUrl = await recreateDatabase(options.database);
    const baseEnv: Record<string, string> = {
      ...host.env,
      NODE_ENV: 'test',
      LOG_LEVEL: 'warn',
      DATABASE_URL: databaseUrl,
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: 'once:bench:',
    };
    const cliLog = join(runDir, 'cli.log');
    await runSourceToEnd('apps/api/src/cli/cli.ts', ['migrate'], { env: baseEnv, logFile: cliLog });
    await runSourceToEnd('apps/api/src/cli/cli.ts', ['seed', String(options.users)], {
      env: baseEnv,
      logFile: cliLog,
    });
    log(`${options.users} users seeded; logs in ${runDir}`);
    const sqs = new SQSClient({
      region: host.region,
      endpoint: host.sqsEndpoint,
      credentials: {
        accessKeyId: host.env.AWS_ACCESS_KEY_ID,
        secretAccessKey: host.env.AWS_SECRET_ACCESS_KEY,
      },
    });

    const plan = Array.from({ length: options.repeat }, (_, round) =>
      options.workerCounts.flatMap((workers) =>
        round % 2 === 0
          ? [
              { workers, dedup: false },
              { workers, dedup: true },
            ]
          : [
              { workers, dedup: true },
              { workers, dedup: false },
            ],
      ),
    ).flat();
    for (const [index, run] of plan.entries()) {
      await redis.restart(0);
      const queues = await createQueues(sqs, `bench-${index}`);
      await fetch(`${host.sesEndpoint}/clear-store`, { method: 'POST' });
      const dedupBefore = await withDatabase(databaseUrl, async (db) =>
        (await tableExists(db, 'dedup_records'))
          ? Number((await db.query('SELECT count(*)::int AS n FROM dedup_records'))[0].n)
          : 0,
      );
      const sqsProxy = new SqsFaultProxy(host.sqsEndpoint, {
        emailQueue: queues.email,
        deleteFailureShare: 0,
        random: new SeededRandom(index),
      });
      const sesProxy = new SesFaultProxy(host.sesEndpoint);
      const fleet = new WorkerFleet({
        env: {
          ...baseEnv,
          SQS_JOBS_QUEUE: queues.jobs,
          SQS_EMAIL_QUEUE: queues.email,
          SQS_WAIT_TIME_SECONDS: '1',
          DEDUP_ENABLED: String(run.dedup),
          MAIL_MAX_SEND_RATE: String(options.maxSendRate),
        },
        sqs: sqsProxy,
        ses: sesProxy,
        queues: [queues.jobs, queues.email],
        logDir: join(runDir, `run-${index}`),
      });
      try {
        await fleet.start(run.workers);
        const slot = new Date(Date.UTC(2030, 0, 1, 7, index)).toISOString();
        const job: JobMessage = {
          eventId: `daily-digest:${slot}`,
          job: 'daily-digest',
          slot,
          firedAt: new Date().toISOString(),
          trigger: 'manual',
        };
        const workerCpuBefore = fleet.workers.map((worker) => cpuSeconds(worker.pid) ?? 0);
        const emulatorCpuBefore = cpuSeconds(host.pid) ?? 0;
        const harnessCpuBefore = process.cpuUsage();
        const fired = Date.now();
        await sqs.send(
          new SendMessageCommand({ QueueUrl: queues.jobsUrl, MessageBody: JSON.stringify(job) }),
        );
        const deadline = fired + options.runTimeoutMs;
        while (sesProxy.stats.accepted < options.users && Date.now() < deadline) await sleep(50);
        const completed = sesProxy.stats.accepted >= options.users;
        const lastAt = sesProxy.stats.lastAcceptedAt ?? Date.now();
        const firstAt = sesProxy.stats.firstAcceptedAt ?? fired;
        const workerCpu = fleet.workers.reduce(
          (sum, worker, i) => sum + (cpuSeconds(worker.pid) ?? 0) - workerCpuBefore[i],
          0,
        );
        const emulatorCpu = (cpuSeconds(host.pid) ?? 0) - emulatorCpuBefore;
        const harnessCpu = process.cpuUsage(harnessCpuBefore);
        await sleep(1000);
        fleet.sampleRss();
        const { emails } = (await (await fetch(`${host.sesEndpoint}/store`)).json()) as {
          emails: Array<{ destination: { to: string[] } }>;
        };
        const recipients = new Set(emails.flatMap((email) => email.destination.to));
        const dedupAfter = await withDatabase(databaseUrl, async (db) =>
          (await tableExists(db, 'dedup_records'))
            ? Number((await db.query('SELECT count(*)::int AS n FROM dedup_records'))[0].n)
            : 0,
        );
        const result: RunResult = {
          ...run,
          emails: emails.length,
          duplicates: emails.length - recipients.size,
          fireToLastMs: lastAt - fired,
          firstToLastMs: lastAt - firstAt,
          peakRssMib: fleet.workers.map((worker) => Math.round((worker.peakRssKib ?? 0) / 1024)),
          cpu: {
            workers: workerCpu,
            emulators: emulatorCpu,
            harness: (harnessCpu.user + harnessCpu.system) / 1e6,
          },
          dedupRecords: dedupAfter - dedupBefore,
          dedupRedisKeys: await countDedupRedisKeys(redis.url),
          completed,
        };
        results.push(result);
        log(
          `${run.workers} workers, dedup ${run.dedup ? 'on' : 'off'}: ${result.emails} emails in ` +
            `${(result.fireToLastMs / 1000).toFixed(2)} s (${rate(result).toFixed(0)}/s)${completed ? '' : ' INCOMPLETE'}`,
        );
      } finally {
        await fleet.stop(5000);
        await sqsProxy.close();
        await sesProxy.close();
      }
    }
    sqs.destroy();
    await dropDatabase(options.database);
  } finally {
    await redis.stop();
    await host.stop();
  }

  console.log(formatResults(results, options, machine(), Date.now() - started));
  return results.every((result) => result.completed && result.duplicates === 0) ? 0 : 1;
}

const rate = (result: RunResult) => result.emails / (result.fireToLastMs / 1000);
const steadyRate = (result: RunResult) => result.emails / (result.firstToLastMs / 1000);
const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;

interface Aggregate {
  workers: number;
  dedup: boolean;
  runs: RunResult[];
  rate: number;
  rateMin: number;
  rateMax: number;
}

function aggregate(results: RunResult[], workers: number, dedup: boolean): Aggregate | undefined {
  const runs = results.filter((result) => result.workers === workers && result.dedup === dedup);
  if (runs.length === 0) return undefined;
  const rates = runs.map(rate);
  return {
    workers,
    dedup,
    runs,
    rate: mean(rates),
    rateMin: Math.min(...rates),
    rateMax: Math.max(...rates),
  };
}

function formatResults(
  results: RunResult[],
  options: BenchOptions,
  machineLine: string,
  totalMs: number,
): string {
  const out: string[] = [];
  out.push(
    `Pipeline bench: ${options.users} users per run, ${options.repeat} round(s), MAIL_MAX_SEND_RATE=${options.maxSendRate}; ${machineLine}`,
  );
  out.push('');
  out.push(
    '| workers | DEDUP_ENABLED | emails/s fire → last (mean, min–max) | emails/s first → last | fire → last email | duplicates | CPU s per run: workers / emulators / harness | dedup records (pg / redis keys) | peak RSS per worker (MiB) |',
  );
  out.push('| ---: | :---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
  for (const workers of options.workerCounts) {
    for (const dedup of [false, true]) {
      const row = aggregate(results, workers, dedup);
      if (!row) continue;
      const incomplete = row.runs.some((run) => !run.completed) ? ' (incomplete run)' : '';
      out.push(
        `| ${workers} | ${dedup} | ${row.rate.toFixed(0)} (${row.rateMin.toFixed(0)}–${row.rateMax.toFixed(0)})${incomplete} | ` +
          `${mean(row.runs.map(steadyRate)).toFixed(0)} | ${(mean(row.runs.map((run) => run.fireToLastMs)) / 1000).toFixed(2)} s | ` +
          `${row.runs.reduce((sum, run) => sum + run.duplicates, 0)} | ` +
          `${mean(row.runs.map((run) => run.cpu.workers)).toFixed(1)} / ${mean(row.runs.map((run) => run.cpu.emulators)).toFixed(1)} / ` +
          `${mean(row.runs.map((run) => run.cpu.harness)).toFixed(1)} | ` +
          `${row.runs.reduce((sum, run) => sum + run.dedupRecords, 0)} / ${Math.max(...row.runs.map((run) => run.dedupRedisKeys))} | ` +
          `${row.runs[0].peakRssMib.map((_, i) => Math.max(...row.runs.map((run) => run.peakRssMib[i] ?? 0))).join(', ')} |`,
      );
    }
  }
  out.push('');
  for (const workers of options.workerCounts) {
    const on = aggregate(results, workers, true);
    const off = aggregate(results, workers, false);
    if (on && off) out.push(`- ${workers} workers: dedup on / off = ${(on.rate / off.rate).toFixed(2)}`);
  }
  const [fewest, most] = [Math.min(...options.workerCounts), Math.max(...options.workerCounts)];
  for (const dedup of [false, true]) {
    const low = aggregate(results, fewest, dedup);
    const high = aggregate(results, most, dedup);
    if (low && high && fewest !== most)
      out.push(
        `- dedup ${dedup ? 'on' : 'off'}: ${most} / ${fewest} workers = ${(high.rate / low.rate).toFixed(2)}`,
      );
  }
  const active = results
    .filter((result) => result.dedup)
    .some((result) => result.dedupRecords + result.dedupRedisKeys > 0);
  if (!active)
    out.push(
      '- no dedup record was written with DEDUP_ENABLED=true: the worker does not run @Idempotent yet, so on and off measure the same code',
    );
  out.push(`- whole bench: ${(totalMs / 1000).toFixed(0)} s`);
  return out.join('\n');
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killSpawned();
    process.exit(130);
  });
}

main(parseArgs(process.argv.slice(2))).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    killSpawned();
    process.exit(2);
  },
);
