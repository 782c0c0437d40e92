import { execFileSync } from 'node:child_process';
import { cpus, freemem, totalmem } from 'node:os';
import { DataSource, type QueryRunner } from 'typeorm';
import { DEDUP_MIGRATIONS } from '@once/dedup/typeorm';
import { DedupMetrics } from '../../libs/dedup/src/lib/dedup-metrics.service';
import { encodeKeyCursor } from '../../libs/dedup/src/lib/list-cursor';
import type { StoreListQuery } from '../../libs/dedup/src/lib/stores/dedup-store.interface';
import { PostgresStore } from '../../libs/dedup/src/lib/stores/postgres.store';
import { dropDatabase, recreateDatabase } from '../../tools/chaos/postgres.database';

interface BenchOptions {
  /** Rows loaded, in millions. */
  millions: number;
  /** Timed runs of every query, interleaved (baseline and current in alternating order). */
  repeat: number;
  /** Share of the COMPLETED rows that has expired (waiting for the purge). */
  expired: number;
  /** Rows per purgeExpired call (the scheduler's DEDUP_PURGE_BATCH). */
  purgeLimit: number;
  /** Stop draining the expired rows after this many seconds (the rate is known long before). */
  purgeSeconds: number;
  /** Migrations from this timestamp on are applied after the load ("current"); older ones before ("baseline"). */
  since: number;
  /** Creation times in random heap order (purge touches a page per row: its worst case). */
  shuffleTime: boolean;
  database: string;
}

const USAGE =
  'usage: npm run bench:dedup-growth -- [--millions 1] [--repeat 9] [--expired 0.2] [--purge-limit 1000] [--purge-seconds 60] [--since <migration timestamp>] [--shuffle-time]';

/** The first migration this bench compares against the schema before it (the growth indexes). */
const DEFAULT_SINCE = 1764700000000;

function parseArgs(argv: readonly string[]): BenchOptions {
  const options: BenchOptions = {
    millions: Number(process.env.DEDUP_GROWTH_MILLIONS ?? 1),
    repeat: 9,
    expired: 0.2,
    purgeLimit: 1000,
    purgeSeconds: 60,
    since: DEFAULT_SINCE,
    shuffleTime: false,
    database: 'once_bench_dedup_growth',
  };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--shuffle-time') {
      options.shuffleTime = true;
      continue;
    }
    const [flag, inline] = argv[i].split(/=(.*)/s, 2);
    const value = inline ?? argv[++i];
    if (value === undefined) throw new Error(`${flag} needs a value\n${USAGE}`);
    if (flag === '--millions') options.millions = Number(value);
    else if (flag === '--repeat') options.repeat = Number(value);
    else if (flag === '--expired') options.expired = Number(value);
    else if (flag === '--purge-limit') options.purgeLimit = Number(value);
    else if (flag === '--purge-seconds') options.purgeSeconds = Number(value);
    else if (flag === '--since') options.since = Number(value);
    else throw new Error(`unknown flag ${flag}\n${USAGE}`);
  }
  const problems = [
    !(options.millions > 0 && options.millions <= 50) && '--millions must be in (0, 50]',
    !(Number.isInteger(options.repeat) && options.repeat >= 3) && '--repeat must be a whole number ≥ 3',
    !(options.expired >= 0 && options.expired < 1) && '--expired must be in [0, 1)',
    !(Number.isInteger(options.purgeLimit) && options.purgeLimit >= 1) && '--purge-limit must be ≥ 1',
    !(options.purgeSeconds > 0) && '--purge-seconds must be > 0',
    !Number.isInteger(options.since) && '--since must be a migration timestamp',
  ].filter(Boolean);
  if (problems.length > 0) throw new Error(`${problems.join('\n')}\n${USAGE}`);
  return options;
}

const KEY_PREFIX = 'once:dedup:';
const TABLE = 'dedup_records';

function machine(): string {
  const nproc = execFileSync('nproc').toString().trim();
  const model = cpus()[0]?.model ?? 'unknown CPU';
  const gib = (bytes: number) => (bytes / 1024 ** 3).toFixed(1);
  return `${nproc} cores (${model}), ${gib(totalmem())} GiB RAM (${gib(freemem())} GiB free), Node ${process.version}`;
}

const timestampOf = (migration: { name: string }) => Number(/(\d{13})$/.exec(migration.name)?.[1] ?? NaN);

/**
 * Rows `from`..`to` (1-based), as the stores write them: 60% send-email, 20% jobs, 15% digest, 5%
 * orders; 1 in 1000 IN_PROGRESS (half of them live, half stale past their lease; none in jobs); COMPLETED rows
 * created over the last `span` hours with a 24 h TTL and a ~100-byte result, so `expired` of them
 * are past expires_at. Rows are inserted oldest first (heap order follows time, as in use, give or take
 * `--shuffle-time`) while keys are hashes, so key order and heap order are unrelated.
 */
function loadSql(from: number, to: number, total: number, expired: number, shuffleTime: boolean): string {
  const spanHours = 24 / (1 - expired);
  return `
    INSERT INTO ${TABLE} (key, scope, idem_key, state, token, fence, message_id, result, payload_hash,
                          attempts, lease_until, expires_at, created_at, updated_at)
    SELECT '${KEY_PREFIX}' || scope || ':' || idem_key, scope, idem_key, state, token, i, message_id,
           CASE WHEN state = 'COMPLETED' THEN jsonb_build_object('messageId', message_id, 'status', 'sent',
             'provider', 'ses', 'acceptedAt', to_char(created_at, 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')) END,
           substr(replace(h2, '-', ''), 1, 22), attempts,
           CASE WHEN state = 'IN_PROGRESS' THEN expires_at END, expires_at, created_at, created_at
    FROM (
      SELECT i, h, h2, token, message_id, scope, state,
             CASE scope WHEN 'jobs' THEN 'daily-digest:' || to_char(created_at, 'YYYY-MM-DD"T"HH24:MI') || ':' || substr(h, 1, 12)
                        WHEN 'digest' THEN 'digest-' || substr(h, 1, 16)
                        ELSE message_id END AS idem_key,
             CASE WHEN state = 'COMPLETED' THEN 1 ELSE 1 + i % 3 END AS attempts,
             CASE WHEN state = 'COMPLETED' THEN created_at + interval '24 hours'
                  WHEN substr(h, 21, 1) < '8' THEN now() + interval '6 hours'
                  ELSE created_at + interval '30 seconds' END AS expires_at,
             created_at
      FROM (
        SELECT i, h, md5(h) AS h2,
               (substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-4' || substr(h, 14, 3) || '-a' || substr(h, 18, 3) || '-' || substr(h, 21, 12)) AS message_id,
               (substr(h, 3, 8) || '-' || substr(h, 11, 4) || '-4' || substr(h, 16, 3) || '-b' || substr(h, 20, 3) || '-' || substr(h, 1, 12)) AS token,
               CASE WHEN i % 100 < 60 THEN 'send-email' WHEN i % 100 < 80 THEN 'jobs'
                    WHEN i % 100 < 95 THEN 'digest' ELSE 'orders' END AS scope,
               CASE WHEN i % 100 NOT BETWEEN 60 AND 79 AND ('x' || substr(h, 17, 4))::bit(16)::int % 1000 = 7
                    THEN 'IN_PROGRESS' ELSE 'COMPLETED' END AS state,
               now() - ${shuffleTime ? `('x' || substr(h, 25, 8))::bit(32)::bigint / 4294967296.0` : `(${total} - i)::float8 / ${total}`} * interval '${spanHours} hours' AS created_at
        FROM (SELECT i, md5(i::text) AS h FROM generate_series(${from}, ${to}) AS i) g
      ) a
    ) b`;
}

const median = (values: readonly number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const spread = (values: readonly number[]) =>
  `${fmt(median(values))} (${fmt(Math.min(...values))}–${fmt(Math.max(...values))})`;
const fmt = (value: number) =>
  value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2);
const mib = (bytes: number) => bytes / 1024 ** 2;

/** The SQL a store call ran (the last statement on the DataSource), to time and explain it on one connection. */
interface Captured {
  sql: string;
  params: unknown[];
}

function capturingDataSource(real: DataSource, sink: { last?: Captured }): DataSource {
  return new Proxy(real, {
    get(target, property, receiver) {
      if (property === 'query')
        return (sql: string, params: unknown[] = []) => {
          sink.last = { sql, params };
          return target.query(sql, params);
        };
      return Reflect.get(target, property, receiver) as unknown;
    },
  });
}

interface Sizes {
  table: number;
  indexes: number;
  total: number;
  perIndex: { name: string; bytes: number }[];
  rows: number;
}

async function sizes(db: DataSource): Promise<Sizes> {
  const [row] = (await db.query(
    `SELECT pg_table_size($1) AS t, pg_indexes_size($1) AS i, pg_total_relation_size($1) AS total,
            (SELECT count(*) FROM ${TABLE}) AS rows`,
    [TABLE],
  )) as { t: string; i: string; total: string; rows: string }[];
  const perIndex = (await db.query(
    `SELECT indexrelid::regclass::text AS name, pg_relation_size(indexrelid) AS bytes
     FROM pg_index WHERE indrelid = $1::regclass ORDER BY 1`,
    [TABLE],
  )) as { name: string; bytes: string }[];
  return {
    table: Number(row.t),
    indexes: Number(row.i),
    total: Number(row.total),
    rows: Number(row.rows),
    perIndex: perIndex.map((index) => ({ name: index.name, bytes: Number(index.bytes) })),
  };
}

function printSizes(label: string, s: Sizes): void {
  const perM = (bytes: number) =>
    `${fmt(mib(bytes))} MiB (${fmt(mib(bytes) / (s.rows / 1e6))} MiB per M rows)`;
  console.log(`\n${label}: ${s.rows.toLocaleString('en')} rows`);
  console.log(`  heap+toast ${perM(s.table)}, indexes ${perM(s.indexes)}, total ${perM(s.total)}`);
  for (const index of s.perIndex) console.log(`  ${index.name}: ${perM(index.bytes)}`);
}

/** A timed statement of the store, by name: the SQL it ran and its parameters. */
interface Probe extends Captured {
  name: string;
  /** Writes are rolled back after timing, so every repeat sees the same table. */
  write: boolean;
}

/** Runs `sql` on `runner`; `hide` lists indexes dropped for the statement (in a rolled-back transaction). */
async function timed(
  runner: QueryRunner,
  probe: Captured,
  hide: readonly string[],
  write: boolean,
): Promise<number> {
  const wrap = hide.length > 0 || write;
  if (wrap) {
    await runner.query('BEGIN');
    for (const index of hide) await runner.query(`DROP INDEX ${index}`);
  }
  const start = process.hrtime.bigint();
  await runner.query(probe.sql, probe.params);
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (wrap) await runner.query('ROLLBACK');
  return ms;
}

async function explain(runner: QueryRunner, probe: Captured, hide: readonly string[]): Promise<string> {
  await runner.query('BEGIN');
  try {
    for (const index of hide) await runner.query(`DROP INDEX ${index}`);
    const rows = (await runner.query(`EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) ${probe.sql}`, probe.params)) as {
      'QUERY PLAN': string;
    }[];
    return rows.map((row) => `    ${row['QUERY PLAN']}`).join('\n');
  } finally {
    await runner.query('ROLLBACK');
  }
}

/** Runs `work` while claiming fresh keys one by one on another connection; the longest claim is how long writes waited. */
async function duringWrites<T>(
  store: PostgresStore,
  prefix: string,
  work: () => Promise<T>,
): Promise<{ result: T; claims: number; longestMs: number }> {
  let done = false;
  let claims = 0;
  let longestMs = 0;
  const claiming = (async () => {
    while (!done) {
      const key = `${claims}`;
      const start = process.hrtime.bigint();
      await store.claim([{ storageKey: `${prefix}${key}`, scope: 'bench', key }], 'bench-token', 30_000);
      longestMs = Math.max(longestMs, Number(process.hrtime.bigint() - start) / 1e6);
      claims++;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  })();
  let result: T;
  try {
    result = await work();
  } finally {
    done = true;
    await claiming;
  }
  return { result, claims, longestMs };
}

/**
 * Table growth of the Postgres dedup store: loads N million realistic rows into a database of its
 * own (migrated with DEDUP_MIGRATIONS), then reports table and index sizes per million rows, the
 * latency of the admin list queries and of claim/get, and purgeExpired throughput. Migrations
 * from `--since` on are applied after the load (their build time is what an existing table pays);
 * each statement is then timed with those migrations' indexes present ("current") and hidden
 * ("baseline": dropped inside a rolled-back transaction), interleaved, repeated.
 */
async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const rows = Math.round(options.millions * 1e6);
  const baselineMigrations = DEDUP_MIGRATIONS.filter((m) => timestampOf(m) < options.since);
  const laterMigrations = DEDUP_MIGRATIONS.filter((m) => timestampOf(m) >= options.since);
  console.log(`dedup-growth: ${rows.toLocaleString('en')} rows, ${options.repeat} repeats; ${machine()}`);
  console.log(
    `baseline migrations: ${baselineMigrations.map((m) => m.name).join(', ')}; after the load: ${laterMigrations.map((m) => m.name).join(', ') || 'none'}`,
  );
  const url = await recreateDatabase(options.database);
  const started = Date.now();
  const elapsed = () => `${((Date.now() - started) / 1000).toFixed(0)} s`;
  const open = (migrations: typeof DEDUP_MIGRATIONS) =>
    new DataSource({
      type: 'postgres',
      url,
      migrations,
      migrationsTransactionMode: 'each',
      extra: { max: 3 },
    });
  let db = open(baselineMigrations);
  try {
    await db.initialize();
    await db.runMigrations();
    const [{ server_version: version }] = (await db.query('SHOW server_version')) as {
      server_version: string;
    }[];
    const settings = (await db.query(
      `SELECT string_agg(name || '=' || setting || COALESCE(unit, ''), ', ' ORDER BY name) AS s FROM pg_settings
       WHERE name IN ('shared_buffers', 'work_mem', 'maintenance_work_mem', 'max_wal_size', 'synchronous_commit')`,
    )) as { s: string }[];
    console.log(`Postgres ${version}: ${settings[0]?.s ?? ''}`);

    // Chunks of 250k rows on two connections (one per core).
    const chunk = 250_000;
    const loadStart = Date.now();
    let next = 1;
    let loaded = 0;
    const loader = async () => {
      const runner = db.createQueryRunner();
      await runner.connect();
      try {
        await runner.query('SET synchronous_commit = off');
        for (let from = next; from <= rows; from = next) {
          const to = Math.min(rows, from + chunk - 1);
          next = to + 1;
          await runner.query(loadSql(from, to, rows, options.expired, options.shuffleTime));
          loaded += to - from + 1;
          process.stdout.write(`\rloaded ${loaded.toLocaleString('en')} rows (${elapsed()})`);
        }
      } finally {
        await runner.release();
      }
    };
    await Promise.all([loader(), loader()]);
    const loadSeconds = (Date.now() - loadStart) / 1000;
    console.log(`\nload: ${loadSeconds.toFixed(0)} s (${fmt(rows / loadSeconds / 1000)}k rows/s)`);
    await db.query(`VACUUM ANALYZE ${TABLE}`);
    printSizes('baseline schema', await sizes(db));
    const indexesBefore = new Set((await sizes(db)).perIndex.map((index) => index.name));

    if (laterMigrations.length > 0) {
      await db.destroy();
      db = open(DEDUP_MIGRATIONS);
      await db.initialize();
      const writer = new PostgresStore(db, new DedupMetrics());
      // Each way the migrations can run, with single claims going on meanwhile: how long do writes wait?
      for (const transaction of ['each', 'none'] as const) {
        if (transaction === 'none')
          for (let i = 0; i < laterMigrations.length; i++)
            await db.undoLastMigration({ transaction: 'each' });
        const waits = await duringWrites(writer, `bench-during-${transaction}-`, async () => {
          const start = Date.now();
          const applied = await db.runMigrations({ transaction });
          return { applied: applied.map((m) => m.name).join(', '), seconds: (Date.now() - start) / 1000 };
        });
        console.log(
          `\nmigrations on the loaded table (transaction: '${transaction}'${transaction === 'none' ? ', CONCURRENTLY' : ''}): ${waits.result.applied} in ${waits.result.seconds.toFixed(1)} s; ${waits.claims} single claims meanwhile, longest ${fmt(waits.longestMs)} ms`,
        );
      }
      await db.query(`DELETE FROM ${TABLE} WHERE key LIKE 'bench-during-%'`);
      await db.query(`ANALYZE ${TABLE}`);
    }
    const after = await sizes(db);
    const added = after.perIndex.map((index) => index.name).filter((name) => !indexesBefore.has(name));
    printSizes('current schema', after);

    const sink: { last?: Captured } = {};
    const store = new PostgresStore(capturingDataSource(db, sink), new DedupMetrics());
    const capture = async (name: string, call: () => Promise<unknown>, write = false): Promise<Probe> => {
      await call();
      if (!sink.last) throw new Error(`${name}: the store ran no statement`);
      return { name, write, ...sink.last };
    };
    const list = (query: Partial<StoreListQuery>) => store.list({ prefix: KEY_PREFIX, limit: 50, ...query });
    // A deep page: the cursor of a key ~90% through the key space (keys are hex hashes after the scope).
    const deep = encodeKeyCursor(`${KEY_PREFIX}send-email:e6`);
    const [liveKey] = (await db.query(
      `SELECT key FROM ${TABLE} WHERE state = 'COMPLETED' AND expires_at > now() + interval '1 hour' LIMIT 1`,
    )) as { key: string }[];
    const claimRequest = (key: string) => ({
      storageKey: `${KEY_PREFIX}send-email:${key}`,
      scope: 'send-email',
      key,
    });
    const probes = [
      await capture('list first page', () => list({})),
      await capture('list deep page (cursor)', () => list({ cursor: deep })),
      await capture('list state=COMPLETED', () => list({ state: 'COMPLETED' })),
      await capture('list state=IN_PROGRESS', () => list({ state: 'IN_PROGRESS' })),
      await capture('list state=IN_PROGRESS deep', () => list({ state: 'IN_PROGRESS', cursor: deep })),
      await capture('list prefix=orders:', () => list({ prefix: `${KEY_PREFIX}orders:` })),
      await capture('list prefix=jobs:daily-digest: deep', () =>
        list({
          prefix: `${KEY_PREFIX}jobs:daily-digest:`,
          cursor: encodeKeyCursor(`${KEY_PREFIX}jobs:daily-digest:9`),
        }),
      ),
      await capture('list prefix=orders: state=IN_PROGRESS', () =>
        list({ prefix: `${KEY_PREFIX}orders:`, state: 'IN_PROGRESS' }),
      ),
      await capture('list prefix=jobs: state=IN_PROGRESS (none)', () =>
        list({ prefix: `${KEY_PREFIX}jobs:`, state: 'IN_PROGRESS' }),
      ),
      await capture('get (live key)', () => store.get(liveKey.key)),
      await capture('get (absent key)', () => store.get(`${KEY_PREFIX}send-email:absent`)),
      await capture(
        'claim (new key)',
        () => store.claim([claimRequest('bench-new')], 'bench-token', 30_000),
        true,
      ),
      await capture(
        'claim (duplicate of a COMPLETED key)',
        () =>
          store.claim(
            [
              {
                storageKey: liveKey.key,
                scope: liveKey.key.split(':')[2],
                key: liveKey.key.split(':').slice(3).join(':'),
              },
            ],
            'bench-token',
            30_000,
          ),
        true,
      ),
    ];
    // Explained only: its rate is measured below, over committed batches.
    const purgeProbe = await capture('purgeExpired', () => store.purgeExpired(options.purgeLimit), true);
    // The probes' own writes (a claimed key, one purge batch) are undone before timing.
    await db.query(`DELETE FROM ${TABLE} WHERE key = $1`, [claimRequest('bench-new').storageKey]);

    const runner2 = db.createQueryRunner();
    await runner2.connect();
    const variants = added.length > 0 ? (['baseline', 'current'] as const) : (['current'] as const);
    const samples = new Map<string, number[]>();
    for (const probe of probes) await timed(runner2, probe, [], true); // warm the cache once
    for (let round = 0; round < options.repeat; round++) {
      const order = round % 2 === 0 ? variants : [...variants].reverse();
      for (const probe of probes)
        for (const variant of order) {
          const ms = await timed(runner2, probe, variant === 'baseline' ? added : [], probe.write);
          const key = `${probe.name}\u0000${variant}`;
          samples.set(key, [...(samples.get(key) ?? []), ms]);
        }
    }
    console.log(
      `\nlatency, ms: median (min–max) of ${options.repeat}, client-side, one connection (${elapsed()})`,
    );
    console.log(
      added.length > 0
        ? `| statement | baseline (without ${added.join(', ')}) | current | current/baseline (min–max per round) |`
        : '| statement | current |',
    );
    console.log(added.length > 0 ? '| --- | ---: | ---: | ---: |' : '| --- | ---: |');
    for (const probe of probes) {
      const current = samples.get(`${probe.name}\u0000current`) ?? [];
      if (added.length === 0) {
        console.log(`| ${probe.name} | ${spread(current)} |`);
        continue;
      }
      const baseline = samples.get(`${probe.name}\u0000baseline`) ?? [];
      const ratios = current.map((ms, i) => ms / baseline[i]);
      console.log(`| ${probe.name} | ${spread(baseline)} | ${spread(current)} | ${spread(ratios)} |`);
    }

    console.log('\nplans (EXPLAIN ANALYZE, BUFFERS; writes rolled back):');
    for (const probe of probes)
      for (const variant of variants) {
        console.log(`\n  ${probe.name} [${variant}]`);
        console.log(await explain(runner2, probe, variant === 'baseline' ? added : []));
      }
    console.log(`\n  purgeExpired(${options.purgeLimit}) [current]`);
    console.log(await explain(runner2, purgeProbe, []));
    await runner2.release();

    // Draining the backlog for real (committed batches, as the scheduler's purge job runs them).
    const [{ expired }] = (await db.query(
      `SELECT count(*)::int AS expired FROM ${TABLE} WHERE expires_at <= now()`,
    )) as {
      expired: number;
    }[];
    const rates: number[] = [];
    const batchMs: number[] = [];
    let purged = 0;
    const purgeStart = Date.now();
    while (Date.now() - purgeStart < options.purgeSeconds * 1000) {
      const start = process.hrtime.bigint();
      const n = await store.purgeExpired(options.purgeLimit);
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      purged += n;
      if (n > 0) rates.push(n / seconds);
      batchMs.push(seconds * 1000);
      if (n < options.purgeLimit) break;
    }
    const purgeSeconds = (Date.now() - purgeStart) / 1000;
    const tenth = Math.max(1, Math.floor(rates.length / 10));
    console.log(
      `\npurgeExpired(${options.purgeLimit}) draining ${expired.toLocaleString('en')} expired rows: ${purged.toLocaleString('en')} in ${purgeSeconds.toFixed(1)} s = ${fmt(purged / purgeSeconds)} rows/s overall; per batch ${spread(rates)} rows/s, ${spread(batchMs)} ms; first 10% of batches ${spread(rates.slice(0, tenth))}, last 10% ${spread(rates.slice(-tenth))}`,
    );
    printSizes('after the purge (before VACUUM)', await sizes(db));
    const vacuumStart = Date.now();
    await db.query(`VACUUM ANALYZE ${TABLE}`);
    console.log(`\nVACUUM ANALYZE after the purge: ${((Date.now() - vacuumStart) / 1000).toFixed(1)} s`);
    printSizes('after VACUUM (freed space is reused, not returned)', await sizes(db));
    console.log(`\ndone in ${elapsed()}`);
  } finally {
    if (db.isInitialized) await db.destroy();
    await dropDatabase(options.database);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
