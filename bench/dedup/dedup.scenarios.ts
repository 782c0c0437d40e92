import 'reflect-metadata';
import type { Message } from '@aws-sdk/client-sqs';
import { IdempotencyConfig, makeIdempotent } from '@aws-lambda-powertools/idempotency';
import { CachePersistenceLayer } from '@aws-lambda-powertools/idempotency/cache';
import type { CacheClient } from '@aws-lambda-powertools/idempotency/cache/types';
import { type DynamicModule, Injectable, type INestApplicationContext, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { SqsMessageHandler } from '@ssut/nestjs-sqs';
import { DedupModule, type DedupModuleOptions, type DedupStoreMode, Idempotent } from '@once/dedup';
import { DEDUP_ENTITIES, DEDUP_MIGRATIONS } from '@once/dedup/typeorm';
import Redis from 'ioredis';
import { randomUUID } from 'node:crypto';
import { cpus, totalmem } from 'node:os';
import { DataSource } from 'typeorm';

const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 1500);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const WARMUP = 500;
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 10);
const BATCH_SIZE = 10;
/** A scenario round stops taking new messages after this long, and no round starts after RUN_BUDGET_MS. */
const ROUND_BUDGET_MS = 1500;
const RUN_BUDGET_MS = 40_000;
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const DATABASE_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
/** Runs only the scenarios whose name matches (the two baselines always run): for profiling one path. */
const ONLY = process.env.BENCH_ONLY ? new RegExp(process.env.BENCH_ONLY) : undefined;

const RUN = `${process.pid}_${randomUUID().slice(0, 6)}`;
const SCHEMA = `dedup_bench_${RUN}`;
const KEY_PREFIX = `once:bench:${RUN}:`;

let effects = 0;
/** The Redis server's CPU so far (user + system, `INFO cpu`), in µs; set once Redis is connected. */
let redisCpu: () => Promise<number> = async () => 0;
let completedRounds = 0;
/** The side effect every handler performs: parse the body (as any real handler would) and count. */
function effect(message: Message): void {
  JSON.parse(message.Body ?? '{}');
  effects += 1;
}

@Injectable()
class SingleHandler {
  @SqsMessageHandler('bench-single', false)
  @Idempotent({ scope: 'bench' })
  async handle(message: Message): Promise<void> {
    effect(message);
  }

  @SqsMessageHandler('bench-tx', false)
  @Idempotent({ scope: 'bench-tx', transactional: true })
  async handleInTransaction(message: Message): Promise<void> {
    effect(message);
  }

  async undecorated(message: Message): Promise<void> {
    effect(message);
  }
}

@Injectable()
class BatchHandler {
  @SqsMessageHandler('bench-batch', true)
  @Idempotent({ scope: 'bench-batch' })
  async handle(messages: Message[]): Promise<void> {
    messages.forEach(effect);
  }
}

/** The store's options with the connections it uses, and only those. */
function connections(store: DedupStoreMode, redis: Redis, dataSource: DataSource): DedupModuleOptions {
  if (store === 'redis') return { store, redis };
  if (store === 'postgres') return { store, dataSource };
  return { store, redis, dataSource };
}

@Module({})
class BenchModule {
  static forRoot(store: DedupStoreMode, redis: Redis, dataSource: DataSource): DynamicModule {
    return {
      module: BenchModule,
      imports: [
        DedupModule.forRoot({
          ...connections(store, redis, dataSource),
          keyPrefix: `${KEY_PREFIX}${store}:`,
        }),
      ],
      providers: [SingleHandler, BatchHandler],
    };
  }
}

interface Result {
  name: string;
  messages: number;
  wallMs: number;
  /** Per-message latency in µs (a batch call's latency divided by its size). */
  latencies: number[];
  effects: number;
  /** CPU time of this process (user + system) during the round, in µs. */
  cpuUs: number;
  /** CPU time of the Redis server (user + system, `INFO cpu`) during the round, in µs. */
  redisCpuUs: number;
}

const makeMessages = (count: number, tag: string): Message[] =>
  Array.from({ length: count }, (_, i) => ({
    MessageId: `${tag}-${i}`,
    ReceiptHandle: `rh-${tag}-${i}`,
    Body: JSON.stringify({ eventId: `${tag}-${i}`, type: 'digest.send', userId: i % 97 }),
  }));

/** Runs `call` over `units` with CONCURRENCY workers, timing each call. */
async function measure<U>(
  name: string,
  units: U[],
  size: (unit: U) => number,
  call: (unit: U) => Promise<unknown>,
): Promise<Result> {
  const latencies: number[] = [];
  const before = effects;
  let next = 0;
  let messages = 0;
  const redisBefore = await redisCpu();
  const started = process.hrtime.bigint();
  const cpuBefore = process.cpuUsage();
  const deadline = Date.now() + ROUND_BUDGET_MS;
  const worker = async () => {
    while (next < units.length && Date.now() < deadline) {
      const unit = units[next++] as U;
      const t0 = process.hrtime.bigint();
      await call(unit);
      const us = Number(process.hrtime.bigint() - t0) / 1000;
      const n = size(unit);
      for (let i = 0; i < n; i++) latencies.push(us / n);
      messages += n;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
  const cpu = process.cpuUsage(cpuBefore);
  const redisCpuUs = (await redisCpu()) - redisBefore;
  return {
    name,
    messages,
    wallMs,
    latencies,
    effects: effects - before,
    cpuUs: cpu.user + cpu.system,
    redisCpuUs,
  };
}

interface Scenario {
  name: string;
  /** Runs one measured round over fresh messages (duplicates scenarios deliver them twice, timing the second). */
  round: (tag: string) => Promise<Result>;
  warm: () => Promise<unknown>;
}

const chunk = (messages: Message[]) =>
  Array.from({ length: Math.ceil(messages.length / BATCH_SIZE) }, (_, i) =>
    messages.slice(i * BATCH_SIZE, (i + 1) * BATCH_SIZE),
  );

function single(name: string, call: (message: Message) => Promise<unknown>): Scenario {
  return {
    name,
    warm: () => measure('warm-up', makeMessages(WARMUP, `w-${randomUUID().slice(0, 8)}`), () => 1, call),
    round: (tag) => measure(name, makeMessages(MESSAGES, tag), () => 1, call),
  };
}

function batch(name: string, call: (messages: Message[]) => Promise<unknown>): Scenario {
  return {
    name,
    warm: () =>
      measure('warm-up', chunk(makeMessages(WARMUP, `w-${randomUUID().slice(0, 8)}`)), (b) => b.length, call),
    round: (tag) => measure(name, chunk(makeMessages(MESSAGES, tag)), (b) => b.length, call),
  };
}

function duplicates(name: string, call: (message: Message) => Promise<unknown>): Scenario {
  return {
    name,
    warm: () => measure('warm-up', makeMessages(WARMUP, `w-${randomUUID().slice(0, 8)}`), () => 1, call),
    round: async (tag) => {
      const messages = makeMessages(MESSAGES, tag);
      const first = await measure('first delivery', messages, () => 1, call);
      return measure(name, messages.slice(0, first.messages), () => 1, call);
    },
  };
}

function batchDuplicates(name: string, call: (messages: Message[]) => Promise<unknown>): Scenario {
  return {
    name,
    warm: () =>
      measure('warm-up', chunk(makeMessages(WARMUP, `w-${randomUUID().slice(0, 8)}`)), (b) => b.length, call),
    round: async (tag) => {
      const batches = chunk(makeMessages(MESSAGES, tag));
      const first = await measure('first delivery', batches, (b) => b.length, call);
      return measure(name, batches.slice(0, first.messages / BATCH_SIZE), (b) => b.length, call);
    },
  };
}

/** A scenario's result: its median round, with every round kept for the per-round ratios. */
interface Summary extends Result {
  rounds: Result[];
}

/** Rounds interleave the scenarios (rotating the order) so a noisy neighbour hits them all alike; the median round wins. */
async function runRounds(all: Scenario[]): Promise<Summary[]> {
  const baselines = ['bare Redis SET NX', 'Powertools idempotency (Redis)', 'Powertools, all duplicates'];
  const scenarios = all.filter(
    (s) => !ONLY || ONLY.test(s.name) || (process.env.BENCH_BASELINES !== '0' && baselines.includes(s.name)),
  );
  const deadline = Date.now() + RUN_BUDGET_MS;
  for (const scenario of scenarios) await scenario.warm();
  const rounds = new Map<string, Result[]>(scenarios.map((s) => [s.name, []]));
  for (let r = 0; r < ROUNDS && (r === 0 || Date.now() < deadline); r++) {
    completedRounds = r + 1;
    for (let i = 0; i < scenarios.length; i++) {
      const scenario = scenarios[(i + r) % scenarios.length] as Scenario;
      rounds.get(scenario.name)?.push(await scenario.round(`r${r}-${randomUUID().slice(0, 8)}`));
    }
  }
  return scenarios.map((scenario) => {
    const results = rounds.get(scenario.name) ?? [];
    const sorted = [...results].sort((a, b) => perMessage(a) - perMessage(b));
    const median = sorted[Math.floor(sorted.length / 2)] as Result;
    return {
      ...median,
      rounds: results,
      latencies: results.flatMap((result) => result.latencies),
      effects: results.reduce((sum, result) => sum + result.effects, 0),
      messages: results.reduce((sum, result) => sum + result.messages, 0),
      wallMs: perMessage(median) * results.reduce((sum, result) => sum + result.messages, 0),
    };
  });
}

const perMessage = (r: Result) => r.wallMs / r.messages;

/** CPU per message over the rounds, `median (min–max)`, of this process or of the Redis server. */
function cpuPerMessage(summary: Summary, of: 'cpuUs' | 'redisCpuUs' = 'cpuUs'): string {
  const values = summary.rounds.map((round) => round[of] / Math.max(1, round.messages)).sort((a, b) => a - b);
  if (values.length === 0) return 'n/a';
  const median = values[Math.floor(values.length / 2)] as number;
  return `${median.toFixed(1)} (${(values[0] as number).toFixed(1)}–${(values[values.length - 1] as number).toFixed(1)})`;
}

/**
 * A ratio computed round by round (both sides measured in the same round, minutes apart at most),
 * as `median (min–max)`: the spread says how far one run's figure can be trusted.
 */
function roundRatio(of: Summary | undefined, over: Summary | undefined, invert = false): string {
  if (!of || !over) return 'n/a';
  const ratios = of.rounds
    .map((round, r) => {
      const base = over.rounds[r];
      if (!base) return NaN;
      return invert ? perMessage(base) / perMessage(round) : perMessage(round) / perMessage(base);
    })
    .filter(Number.isFinite)
    .sort((a, b) => a - b);
  if (ratios.length === 0) return 'n/a';
  const median = ratios[Math.floor(ratios.length / 2)] as number;
  return `${median.toFixed(2)} (${(ratios[0] as number).toFixed(2)}–${(ratios[ratios.length - 1] as number).toFixed(2)})`;
}

/** Powertools' cache layer speaks the node-redis API (`set(k, v, { EX, NX })`, `del([keys])`); ioredis needs this shim. */
function powertoolsClient(redis: Redis): CacheClient {
  return {
    get: (name) => redis.get(name),
    set: (name, value, options) => {
      const { EX, NX } = (options ?? {}) as { EX?: number; NX?: boolean };
      const args: (string | number)[] = EX ? ['EX', Math.max(1, Math.ceil(EX))] : [];
      if (NX) args.push('NX');
      return (redis.set as (...a: unknown[]) => Promise<string | null>)(String(name), String(value), ...args);
    },
    del: (keys) => redis.del(...keys),
  };
}

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
};
const mean = (values: number[]) => values.reduce((sum, v) => sum + v, 0) / Math.max(1, values.length);

function printTable(results: Summary[]): void {
  const byName = new Map(results.map((r) => [r.name, r]));
  const setNx = byName.get('bare Redis SET NX');
  const powertools = byName.get('Powertools idempotency (Redis)');
  const powertoolsDup = byName.get('Powertools, all duplicates');
  const rows = results.map((r) => {
    const versusPowertools = r.name.includes('duplicates') ? powertoolsDup : powertools;
    return [
      r.name,
      String(r.messages),
      String(r.effects),
      Math.round((r.messages / r.wallMs) * 1000).toLocaleString('en-US'),
      mean(r.latencies).toFixed(0),
      percentile(r.latencies, 99).toFixed(0),
      cpuPerMessage(r),
      cpuPerMessage(r, 'redisCpuUs'),
      roundRatio(r, setNx),
      roundRatio(r, versusPowertools, true),
    ];
  });
  const header = [
    'scenario',
    'msgs',
    'effects',
    'msg/s',
    'mean µs',
    'p99 µs',
    'CPU µs/msg',
    'Redis CPU µs/msg',
    'cost ÷ SET NX',
    'speed × Powertools',
  ];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]) =>
    `| ${cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join(' | ')} |`;
  console.log(line(header));
  console.log(`|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`);
  for (const row of rows) console.log(line(row));
}

/** `INFO commandstats` as calls and µs per command (server-side time only: no network, no client). */
async function commandStats(redis: Redis): Promise<Map<string, { calls: number; usec: number }>> {
  const stats = new Map<string, { calls: number; usec: number }>();
  for (const line of (await redis.info('commandstats')).split(/\r?\n/)) {
    const match = /^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/.exec(line);
    if (match) stats.set(match[1] as string, { calls: Number(match[2]), usec: Number(match[3]) });
  }
  return stats;
}

/**
 * Where Redis spent its time during the rounds: per command, the calls and server-side µs per call
 * (the difference of two `INFO commandstats`; other clients of a shared Redis count too).
 */
function printCommandStats(
  before: Map<string, { calls: number; usec: number }>,
  after: Map<string, { calls: number; usec: number }>,
): void {
  const rows = [...after]
    .map(([name, now]) => {
      const then = before.get(name) ?? { calls: 0, usec: 0 };
      return { name, calls: now.calls - then.calls, usec: now.usec - then.usec };
    })
    .filter((row) => row.calls > 0 && !['info', 'ping', 'client', 'select', 'hello'].includes(row.name))
    .sort((a, b) => b.usec - a.usec)
    .slice(0, 10);
  console.log('\nRedis server time during the rounds (INFO commandstats):');
  for (const row of rows)
    console.log(
      `  ${row.name.padEnd(10)} ${String(row.calls).padStart(9)} calls  ${(row.usec / row.calls).toFixed(2).padStart(7)} µs/call  ${(row.usec / 1000).toFixed(0).padStart(6)} ms`,
    );
}

export async function main(): Promise<void> {
  const started = Date.now();
  // BENCH_AUTOPIPELINE=1 turns on ioredis' auto-pipelining for every scenario alike (slower here: see README).
  const redis = new Redis(REDIS_URL, {
    maxRetriesPerRequest: 1,
    enableAutoPipelining: process.env.BENCH_AUTOPIPELINE === '1',
  });
  redisCpu = async () => {
    const info = await redis.info('cpu');
    const seconds = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
    return Math.round((seconds('used_cpu_user') + seconds('used_cpu_sys')) * 1e6);
  };
  const dataSource = new DataSource({
    type: 'postgres',
    url: DATABASE_URL,
    schema: SCHEMA,
    entities: DEDUP_ENTITIES,
    migrations: DEDUP_MIGRATIONS,
    synchronize: false,
    extra: { max: CONCURRENCY + 2, options: `-c search_path=${SCHEMA}` },
  });
  const contexts: INestApplicationContext[] = [];
  try {
    await dataSource.initialize();
    await dataSource.query(`CREATE SCHEMA IF NOT EXISTS "${SCHEMA}"`);
    await dataSource.runMigrations();

    const app = async (store: DedupStoreMode) => {
      const context = await NestFactory.createApplicationContext(
        BenchModule.forRoot(store, redis, dataSource),
        {
          logger: false,
        },
      );
      contexts.push(context);
      return { single: context.get(SingleHandler), batch: context.get(BatchHandler) };
    };
    const onRedis = await app('redis');
    const onPostgres = await app('postgres');
    const onBoth = await app('redis+postgres');

    const config = new IdempotencyConfig({
      eventKeyJmesPath: 'powertools_json(Body).eventId',
      expiresAfterSeconds: 3600,
    });
    // Outside Lambda there is no context; this one gives Powertools its in-progress lease (the "Lambda timeout").
    config.registerLambdaContext({ getRemainingTimeInMillis: () => 30_000 } as Parameters<
      IdempotencyConfig['registerLambdaContext']
    >[0]);
    const powertools = makeIdempotent(async (message: Message) => effect(message), {
      persistenceStore: new CachePersistenceLayer({ client: powertoolsClient(redis) }),
      config,
      keyPrefix: `${KEY_PREFIX}powertools`,
    });
    // One call through every path first: connections, Lua scripts, and AsyncLocalStorage's hooks (which a Nest
    // app with nestjs-pino has on anyway) are then in place for every scenario alike.
    const [first] = makeMessages(1, 'first');
    for (const call of [
      () => powertools(first as Message),
      () => onRedis.single.handle(first as Message),
      () => onPostgres.single.handle(first as Message),
      () => onBoth.single.handle(first as Message),
    ]) {
      await call();
    }

    const statsBefore = await commandStats(redis);
    const results = await runRounds([
      single('no dedup', (m) => onRedis.single.undecorated(m)),
      single('bare Redis SET NX', async (m) => {
        const eventId = (JSON.parse(m.Body ?? '{}') as { eventId: string }).eventId;
        if ((await redis.set(`${KEY_PREFIX}setnx:${eventId}`, '1', 'PX', 3_600_000, 'NX')) === 'OK')
          effect(m);
      }),
      single('Powertools idempotency (Redis)', (m) => powertools(m)),
      single('@Idempotent redis', (m) => onRedis.single.handle(m)),
      single('@Idempotent postgres', (m) => onPostgres.single.handle(m)),
      single('@Idempotent redis+postgres', (m) => onBoth.single.handle(m)),
      single('@Idempotent postgres transactional', (m) => onPostgres.single.handleInTransaction(m)),
      batch('@Idempotent batch×10 redis', (ms) => onRedis.batch.handle(ms)),
      batch('@Idempotent batch×10 postgres', (ms) => onPostgres.batch.handle(ms)),
      batch('@Idempotent batch×10 redis+postgres', (ms) => onBoth.batch.handle(ms)),
      duplicates('Powertools, all duplicates', (m) => powertools(m)),
      duplicates('@Idempotent redis, all duplicates', (m) => onRedis.single.handle(m)),
      batchDuplicates('@Idempotent batch×10 redis, all duplicates', (ms) => onRedis.batch.handle(ms)),
      duplicates('@Idempotent postgres, all duplicates', (m) => onPostgres.single.handle(m)),
    ]);

    console.log(
      `\n@once/dedup benchmark: ${completedRounds} interleaved rounds × ${MESSAGES} messages per scenario (after ${WARMUP} warm-up), ` +
        `${CONCURRENCY} calls in flight, ` +
        `Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, ` +
        `Redis ${REDIS_URL}, Postgres ${new URL(DATABASE_URL).host}\n`,
    );
    printTable(results);
    printCommandStats(statsBefore, await commandStats(redis));
    console.log(
      '\nmsg/s: median round. mean/p99 µs: per-message latency over all rounds (a batch call counts its latency ÷ its size).' +
        '\nCPU µs/msg: this process (harness, handler, Redis/Postgres client) per message, median (min–max) over rounds.' +
        '\nRedis CPU µs/msg: the Redis server (INFO cpu, user + system: commands, scripts, sockets) per message, same way.' +
        '\ncost ÷ SET NX: time per message relative to one bare SET NX round trip (lower is better).' +
        '\nratios: median of the per-round ratios (both sides from the same round), min–max across rounds in brackets.' +
        '\nspeed × Powertools: throughput relative to Powertools on the same path (first deliveries or duplicates; higher is better).' +
        `\neffects: side effects run (must equal msgs for first deliveries, 0 for duplicates). Total ${((Date.now() - started) / 1000).toFixed(1)} s.`,
    );
  } finally {
    for (const context of contexts) await context.close();
    if (dataSource.isInitialized) {
      await dataSource.query(`DROP SCHEMA IF EXISTS "${SCHEMA}" CASCADE`);
      await dataSource.destroy();
    }
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${KEY_PREFIX}*`, 'COUNT', 1000);
      if (keys.length > 0) await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
    await redis.quit();
  }
}
