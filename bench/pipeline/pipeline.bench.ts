import { execFileSync } from 'node:child_process';
import { freemem, totalmem, cpus } from 'node:os';
import { join, resolve } from 'node:path';
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
import { BareFleet } from './bare.fleet';
import { enqueue, fanoutBodies, subscribedUsers } from './send-email.messages';

/** bare: bench/pipeline/bare.consumer.ts; off / on: the worker with DEDUP_ENABLED=false / true. */
type Config = 'bare' | 'off' | 'on';
const CONFIG_LABEL: Record<Config, string> = { bare: 'bare', off: 'dedup off', on: 'dedup on' };

/** direct: the bench enqueues the fan-out's send-email messages itself; fanout: the workers fan a job out. */
type Source = 'direct' | 'fanout';

interface BenchOptions {
  users: number;
  workerCounts: number[];
  /** Rounds over every configuration, the order rotating from round to round. */
  repeat: number;
  /** `MAIL_MAX_SEND_RATE`: high by default so the SES account's 200/s does not cap what is measured. */
  maxSendRate: number;
  runTimeoutMs: number;
  source: Source;
  /**
   * When set, every consumer process profiles its CPU from fire to the last email (cpu-profile.preload.js)
   * and writes `<dir>/run-<n>-<configuration>/<pid>.cpuprofile`.
   */
  cpuProfDir?: string;
  database: string;
}

interface RunResult {
  config: Config;
  workers: number;
  round: number;
  emails: number;
  duplicates: number;
  /** Fire (first message enqueued, or the job sent) → the N-th email accepted by SES. */
  fireToLastMs: number;
  /** First → N-th email accepted: the steady-state rate. */
  firstToLastMs: number;
  /** How long the bench took to enqueue the messages (direct source). */
  enqueueMs?: number;
  peakRssMib: number[];
  /** CPU seconds used from fire to the last email: all consumer processes, the emulator process, this process (proxies). */
  cpu: { workers: number; emulators: number; harness: number; postgres: number; redis: number };
  dedupRecords: number;
  dedupRedisKeys: number;
  /** Postgres transactions committed or rolled back in the bench database, from before boot to after stop. */
  pgTransactions: number;
  /** Per email, the commands the bench's Redis ran from fire to the last email, by command. */
  redisCommands: ReadonlyArray<readonly [string, number]>;
  completed: boolean;
}

const USAGE =
  'usage: npm run bench:pipeline -- [--users 2000] [--workers 2,4] [--repeat 3] [--source direct|fanout] ' +
  '[--max-send-rate 100000] [--run-timeout 60] [--cpu-prof <dir>]';

function parseArgs(argv: readonly string[]): BenchOptions {
  const options: BenchOptions = {
    users: 2000,
    workerCounts: [2, 4],
    repeat: 3,
    maxSendRate: 100_000,
    runTimeoutMs: 60_000,
    source: 'direct',
    database: 'once_bench_pipeline',
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s, 2);
    const value = inline ?? argv[++i];
    if (value === undefined) throw new Error(`${flag} needs a value\n${USAGE}`);
    if (flag === '--users') options.users = Number(value);
    else if (flag === '--workers') options.workerCounts = value.split(',').map(Number);
    else if (flag === '--repeat') options.repeat = Number(value);
    else if (flag === '--max-send-rate') options.maxSendRate = Number(value);
    else if (flag === '--run-timeout') options.runTimeoutMs = Number(value) * 1000;
    else if (flag === '--cpu-prof') options.cpuProfDir = resolve(value);
    else if (flag === '--source') {
      if (value !== 'direct' && value !== 'fanout') throw new Error('--source must be direct or fanout');
      options.source = value;
    } else throw new Error(`unknown flag ${flag}\n${USAGE}`);
  }
  if (!Number.isInteger(options.users) || options.users < 1)
    throw new Error('--users must be a whole number');
  if (!Number.isInteger(options.repeat) || options.repeat < 1)
    throw new Error('--repeat must be a whole number');
  if (options.workerCounts.some((count) => !Number.isInteger(count) || count < 1))
    throw new Error('--workers must list whole numbers, e.g. 2,4');
  if (!(options.runTimeoutMs > 0)) throw new Error('--run-timeout must be a number of seconds');
  if (!(options.maxSendRate > 0)) throw new Error('--max-send-rate must be a positive number');
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

async function countDedupRows(databaseUrl: string): Promise<number> {
  return withDatabase(databaseUrl, async (db) =>
    (await tableExists(db, 'dedup_records'))
      ? Number((await db.query('SELECT count(*)::int AS n FROM dedup_records'))[0].n)
      : 0,
  );
}

/** Transactions of the database so far (a statement outside a transaction is one); exited backends have flushed theirs. */
async function countTransactions(databaseUrl: string): Promise<number> {
  return withDatabase(databaseUrl, async (db) =>
    Number(
      (
        await db.query(
          'SELECT xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = current_database()',
        )
      )[0].n,
    ),
  );
}

/** CPU seconds so far of each server process (backend) connected to the database, this one's excepted. */
async function backendCpu(databaseUrl: string): Promise<Map<number, number>> {
  const rows: Array<{ pid: number }> = await withDatabase(databaseUrl, (db) =>
    db.query(
      'SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()',
    ),
  );
  return new Map(rows.map(({ pid }) => [pid, cpuSeconds(pid) ?? 0]));
}

/** Calls so far by Redis command (`INFO commandstats`). */
async function redisCommandCalls(redis: Redis): Promise<Map<string, number>> {
  const stats = await redis.info('commandstats');
  return new Map(
    [...stats.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)].map((match) => [match[1], Number(match[2])]),
  );
}

/** Per email, the commands run between two `redisCommandCalls` snapshots, most called first. */
function redisCommandsPerEmail(before: Map<string, number>, after: Map<string, number>, emails: number) {
  return [...after]
    .map(([command, calls]) => [command, (calls - (before.get(command) ?? 0)) / Math.max(emails, 1)] as const)
    .filter(([command, perEmail]) => perEmail > 0 && command !== 'info')
    .sort((a, b) => b[1] - a[1]);
}

/** `<prefix>-jobs` and `<prefix>-send-email`, each with a DLQ; names (for the consumers) and URLs. */
async function createQueues(sqs: SQSClient, prefix: string) {
  const create = async (name: string) =>
    (await createTestQueue(sqs, name, { visibilityTimeout: 30, maxReceiveCount: 5 })).url;
  return {
    jobs: `${prefix}-jobs`,
    email: `${prefix}-send-email`,
    jobsUrl: await create(`${prefix}-jobs`),
    emailUrl: await create(`${prefix}-send-email`),
  };
}

function machine(): string {
  const nproc = execFileSync('nproc').toString().trim();
  const model = cpus()[0]?.model ?? 'unknown CPU';
  const gib = (bytes: number) => (bytes / 1024 ** 3).toFixed(1);
  return `${nproc} cores (${model}), ${gib(totalmem())} GiB RAM (${gib(freemem())} GiB free), Node ${process.version}`;
}

/** Round `round`'s order: the configurations rotated, so each one takes each place across rounds. */
function roundOrder(configs: readonly Config[], round: number): Config[] {
  const shift = round % configs.length;
  return [...configs.slice(shift), ...configs.slice(0, shift)];
}

/**
 * Emails per second through the bare baseline and the worker with `DEDUP_ENABLED` off and on, for
 * each worker count, every run on fresh queues and a fresh slot: `npm run bench:pipeline`.
 */
async function main(options: BenchOptions): Promise<number> {
  const started = Date.now();
  const log = (message: string) =>
    process.stderr.write(`[bench ${((Date.now() - started) / 1000).toFixed(1)}s] ${message}\n`);
  const runDir = join(ROOT, 'tmp', 'bench-pipeline', new Date(started).toISOString().replace(/[:.]/g, '-'));
  const host = await startEmulatorHost({ visibilityTimeout: 30, maxReceiveCount: 5, queues: [] });
  const redis = await RedisInstance.start('none');
  const results: RunResult[] = [];
  const configs: Config[] = options.source === 'direct' ? ['bare', 'off', 'on'] : ['off', 'on'];
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
    const users = await subscribedUsers(databaseUrl);
    log(`${users.length} subscribed users seeded; logs in ${runDir}`);
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
        roundOrder(configs, round).map((config) => ({ config, workers, round })),
      ),
    ).flat();
    for (const [index, run] of plan.entries()) {
      await redis.restart(0);
      const queues = await createQueues(sqs, `bench-${index}`);
      await fetch(`${host.sesEndpoint}/clear-store`, { method: 'POST' });
      const dedupBefore = await countDedupRows(databaseUrl);
      const transactionsBefore = await countTransactions(databaseUrl);
      const sqsProxy = new SqsFaultProxy(host.sqsEndpoint, {
        emailQueue: queues.email,
        deleteFailureShare: 0,
        random: new SeededRandom(index),
      });
      const sesProxy = new SesFaultProxy(host.sesEndpoint);
      const slot = new Date(Date.UTC(2030, 0, 1, 7, index)).toISOString();
      const job: JobMessage = {
        eventId: `daily-digest:${slot}`,
        job: 'daily-digest',
        slot,
        firedAt: new Date().toISOString(),
        trigger: 'manual',
      };
      const bodies = options.source === 'direct' ? fanoutBodies(job, users) : [];
      const logDir = join(runDir, `run-${index}`);
      const env: Record<string, string> = {
        ...baseEnv,
        SQS_WAIT_TIME_SECONDS: '1',
        ...(options.cpuProfDir
          ? {
              NODE_OPTIONS: `--require ${join(__dirname, 'cpu-profile.preload.js')}`,
              BENCH_CPU_PROF_DIR: join(options.cpuProfDir, `run-${index}-${run.config}`),
            }
          : {}),
      };
      const fleet =
        run.config === 'bare'
          ? new BareFleet({
              env: { ...env, SQS_EMAIL_QUEUE: queues.email },
              sqs: sqsProxy,
              ses: sesProxy,
              emailQueue: queues.email,
              logDir,
            })
          : new WorkerFleet({
              env: {
                ...env,
                SQS_JOBS_QUEUE: queues.jobs,
                SQS_EMAIL_QUEUE: queues.email,
                DEDUP_ENABLED: String(run.config === 'on'),
                MAIL_MAX_SEND_RATE: String(options.maxSendRate),
              },
              sqs: sqsProxy,
              ses: sesProxy,
              queues: [queues.jobs, queues.email],
              logDir,
            });
      const redisStats = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
      let result: RunResult | undefined;
      try {
        await redisStats.connect();
        await fleet.start(run.workers);
        const workerCpuBefore = fleet.workers.map((worker) => cpuSeconds(worker.pid) ?? 0);
        const emulatorCpuBefore = cpuSeconds(host.pid) ?? 0;
        const postgresCpuBefore = await backendCpu(databaseUrl);
        const redisCpuBefore = cpuSeconds(redis.pid ?? 0) ?? 0;
        const harnessCpuBefore = process.cpuUsage();
        const redisCallsBefore = await redisCommandCalls(redisStats);
        const profile = () => {
          if (options.cpuProfDir) for (const worker of fleet.workers) process.kill(worker.pid, 'SIGWINCH');
        };
        profile();
        const fired = Date.now();
        let enqueueMs: number | undefined;
        const firing =
          options.source === 'direct'
            ? enqueue(sqs, queues.emailUrl, bodies).then(() => {
                enqueueMs = Date.now() - fired;
              })
            : sqs
                .send(new SendMessageCommand({ QueueUrl: queues.jobsUrl, MessageBody: JSON.stringify(job) }))
                .then(() => undefined);
        const expected = options.source === 'direct' ? bodies.length : users.length;
        const deadline = fired + options.runTimeoutMs;
        while (sesProxy.stats.accepted < expected && Date.now() < deadline) await sleep(50);
        await firing;
        const completed = sesProxy.stats.accepted >= expected;
        const lastAt = sesProxy.stats.lastAcceptedAt ?? Date.now();
        const firstAt = sesProxy.stats.firstAcceptedAt ?? fired;
        const workerCpu = fleet.workers.reduce(
          (sum, worker, i) => sum + (cpuSeconds(worker.pid) ?? 0) - workerCpuBefore[i],
          0,
        );
        const emulatorCpu = (cpuSeconds(host.pid) ?? 0) - emulatorCpuBefore;
        const harnessCpu = process.cpuUsage(harnessCpuBefore);
        const redisCpu = (cpuSeconds(redis.pid ?? 0) ?? 0) - redisCpuBefore;
        const postgresCpu = [...(await backendCpu(databaseUrl))].reduce(
          (sum, [pid, seconds]) => sum + seconds - (postgresCpuBefore.get(pid) ?? 0),
          0,
        );
        const redisCallsAfter = await redisCommandCalls(redisStats);
        profile();
        await sleep(1000);
        fleet.sampleRss();
        const { emails } = (await (await fetch(`${host.sesEndpoint}/store`)).json()) as {
          emails: Array<{ destination: { to: string[] } }>;
        };
        const recipients = new Set(emails.flatMap((email) => email.destination.to));
        result = {
          ...run,
          emails: emails.length,
          duplicates: emails.length - recipients.size,
          fireToLastMs: lastAt - fired,
          firstToLastMs: lastAt - firstAt,
          enqueueMs,
          peakRssMib: fleet.workers.map((worker) => Math.round((worker.peakRssKib ?? 0) / 1024)),
          cpu: {
            workers: workerCpu,
            emulators: emulatorCpu,
            harness: (harnessCpu.user + harnessCpu.system) / 1e6,
            postgres: postgresCpu,
            redis: redisCpu,
          },
          dedupRecords: (await countDedupRows(databaseUrl)) - dedupBefore,
          dedupRedisKeys: await countDedupRedisKeys(redis.url),
          pgTransactions: 0,
          redisCommands: redisCommandsPerEmail(redisCallsBefore, redisCallsAfter, emails.length),
          completed,
        };
      } finally {
        redisStats.disconnect();
        await fleet.stop(5000);
        await sqsProxy.close();
        await sesProxy.close();
      }
      result.pgTransactions = (await countTransactions(databaseUrl)) - transactionsBefore;
      results.push(result);
      log(
        `round ${run.round + 1}, ${run.workers} × ${CONFIG_LABEL[run.config]}: ${result.emails} emails in ` +
          `${(result.fireToLastMs / 1000).toFixed(2)} s (${rate(result).toFixed(0)}/s, ` +
          `${perThousand(result, result.cpu.workers).toFixed(2)} worker CPU s per 1,000)` +
          `${result.enqueueMs === undefined ? '' : `, enqueued in ${(result.enqueueMs / 1000).toFixed(2)} s`}${result.completed ? '' : ' INCOMPLETE'}; ` +
          `per email: ${(result.pgTransactions / Math.max(result.emails, 1)).toFixed(2)} Postgres transactions, Redis ` +
          (result.redisCommands
            .map(([command, perEmail]) => `${command} ${perEmail.toFixed(2)}`)
            .join(', ') || 'none'),
      );
    }
    sqs.destroy();
    await dropDatabase(options.database);
  } finally {
    await redis.stop();
    await host.stop();
  }

  console.log(formatResults(results, options, configs, machine(), Date.now() - started));
  return results.every((result) => result.completed && result.duplicates === 0) ? 0 : 1;
}

const rate = (result: RunResult) => result.emails / (result.fireToLastMs / 1000);
const steadyRate = (result: RunResult) => result.emails / (result.firstToLastMs / 1000);
const perThousand = (result: RunResult, cpuSeconds: number) =>
  (cpuSeconds / Math.max(result.emails, 1)) * 1000;

const redisCalls = (result: RunResult, which: (command: string) => boolean) =>
  result.redisCommands.reduce((sum, [command, perEmail]) => sum + (which(command) ? perEmail : 0), 0);

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** `median (min–max)` of `values`, each formatted with `digits` decimals. */
function spread(values: number[], digits: number): string {
  if (values.length === 0) return '–';
  const format = (value: number) => value.toFixed(digits);
  if (values.length === 1) return format(values[0]);
  return `${format(median(values))} (${format(Math.min(...values))}–${format(Math.max(...values))})`;
}

/** Per round, `numerator`'s rate over `denominator`'s, for one worker count. */
function roundRatios(
  results: RunResult[],
  workers: number,
  numerator: Config,
  denominator: Config,
): number[] {
  const rounds = [...new Set(results.map((result) => result.round))];
  return rounds.flatMap((round) => {
    const find = (config: Config) =>
      results.find(
        (result) => result.round === round && result.workers === workers && result.config === config,
      );
    const top = find(numerator);
    const bottom = find(denominator);
    return top && bottom ? [rate(top) / rate(bottom)] : [];
  });
}

function formatResults(
  results: RunResult[],
  options: BenchOptions,
  configs: readonly Config[],
  machineLine: string,
  totalMs: number,
): string {
  const out: string[] = [];
  out.push(
    `Pipeline bench: ${options.users} users per run, ${options.repeat} round(s), source ${options.source}, ` +
      `MAIL_MAX_SEND_RATE=${options.maxSendRate}; ${machineLine}`,
  );
  out.push('');
  out.push(
    '| workers | configuration | emails/s fire → last | emails/s first → last | worker CPU s per 1,000 emails | other CPU s per 1,000: emulators / harness / Postgres / Redis | per email: Postgres transactions / Redis scripts / Redis commands (in scripts too) | duplicates | dedup records (pg / redis keys) | peak RSS per process (MiB) |',
  );
  out.push('| ---: | :--- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
  for (const workers of options.workerCounts) {
    for (const config of configs) {
      const runs = results.filter((result) => result.workers === workers && result.config === config);
      if (runs.length === 0) continue;
      const incomplete = runs.some((run) => !run.completed) ? ' (incomplete run)' : '';
      const cpu = (pick: (run: RunResult) => number) => runs.map((run) => perThousand(run, pick(run)));
      out.push(
        `| ${workers} | ${CONFIG_LABEL[config]} | ${spread(runs.map(rate), 0)}${incomplete} | ${spread(runs.map(steadyRate), 0)} | ` +
          `${spread(
            cpu((run) => run.cpu.workers),
            2,
          )} | ` +
          `${(['emulators', 'harness', 'postgres', 'redis'] as const).map((part) => median(cpu((run) => run.cpu[part])).toFixed(2)).join(' / ')} | ` +
          `${median(runs.map((run) => run.pgTransactions / Math.max(run.emails, 1))).toFixed(2)} / ` +
          `${median(runs.map((run) => redisCalls(run, (command) => command === 'eval' || command === 'evalsha'))).toFixed(2)} / ` +
          `${median(runs.map((run) => redisCalls(run, () => true))).toFixed(2)} | ` +
          `${runs.reduce((sum, run) => sum + run.duplicates, 0)} | ` +
          `${runs.reduce((sum, run) => sum + run.dedupRecords, 0)} / ${Math.max(...runs.map((run) => run.dedupRedisKeys))} | ` +
          `${runs[0].peakRssMib.map((_, i) => Math.max(...runs.map((run) => run.peakRssMib[i] ?? 0))).join(', ')} |`,
      );
    }
  }
  out.push('');
  out.push('Ratios of emails/s (fire → last), per round, median (min–max) over rounds:');
  out.push('');
  const pairs: Array<[Config, Config, string]> = [
    ['on', 'bare', 'full (dedup on) ÷ bare, target ≥ 0.8 with 2 workers'],
    ['off', 'bare', 'dedup off ÷ bare'],
    ['on', 'off', 'dedup on ÷ off, target ≥ 0.9'],
  ];
  out.push(
    `| workers | ${pairs
      .filter(([a, b]) => configs.includes(a) && configs.includes(b))
      .map(([, , label]) => label)
      .join(' | ')} |`,
  );
  out.push(
    `| ---: |${pairs
      .filter(([a, b]) => configs.includes(a) && configs.includes(b))
      .map(() => ' ---: |')
      .join('')}`,
  );
  for (const workers of options.workerCounts) {
    const cells = pairs
      .filter(([a, b]) => configs.includes(a) && configs.includes(b))
      .map(([a, b]) => spread(roundRatios(results, workers, a, b), 2));
    out.push(`| ${workers} | ${cells.join(' | ')} |`);
  }
  out.push('');
  const [fewest, most] = [Math.min(...options.workerCounts), Math.max(...options.workerCounts)];
  if (fewest !== most) {
    for (const config of configs) {
      const rates = (workers: number) =>
        results.filter((result) => result.workers === workers && result.config === config).map(rate);
      out.push(
        `- ${CONFIG_LABEL[config]}: ${most} ÷ ${fewest} workers = ${(median(rates(most)) / median(rates(fewest))).toFixed(2)} (medians)`,
      );
    }
  }
  const enqueueTimes = results.flatMap((result) =>
    result.enqueueMs === undefined ? [] : [result.enqueueMs / 1000],
  );
  if (enqueueTimes.length > 0)
    out.push(`- the bench's enqueue of the messages took ${spread(enqueueTimes, 2)} s (within fire → last)`);
  const active = results
    .filter((result) => result.config === 'on')
    .some((result) => result.dedupRecords + result.dedupRedisKeys > 0);
  if (!active && configs.includes('on'))
    out.push(
      '- no dedup record was written with DEDUP_ENABLED=true: the worker does not run @Idempotent, so on and off measure the same code',
    );
  if (options.source === 'fanout')
    out.push(
      '- source fanout: the bare baseline needs the messages on the queue without a worker, so it runs with --source direct only',
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
