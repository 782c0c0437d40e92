import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { DedupMetrics } from '../src/lib/dedup-metrics.service';
import { DEDUP_IN_PROGRESS_INDEX } from '../src/lib/database/migrations/1764700000000-add-dedup-in-progress-index.migration';
import type { StoredRecord } from '../src/lib/stores/dedup-store.interface';
import { PostgresStore } from '../src/lib/stores/postgres.store';
import { DEDUP_MIGRATIONS } from '../src/typeorm';
import { quietLogs } from './support/dedup.fixtures';

type TransactionMode = 'all' | 'each' | 'none';

/** A DataSource whose tables live in a schema of the test's own (the run's database is shared by the e2e files). */
async function openSchema(): Promise<{ dataSource: DataSource; schema: string }> {
  const schema = `dedup_growth_${randomUUID().slice(0, 8)}`;
  const dataSource = new DataSource({
    type: 'postgres',
    url: process.env.DATABASE_URL,
    migrations: DEDUP_MIGRATIONS,
    extra: { max: 2, options: `-c search_path=${schema}` },
  });
  await dataSource.initialize();
  await dataSource.query(`CREATE SCHEMA ${schema}`);
  return { dataSource, schema };
}

async function closeSchema({
  dataSource,
  schema,
}: {
  dataSource: DataSource;
  schema: string;
}): Promise<void> {
  await dataSource.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await dataSource.destroy();
}

const inProgressIndex = async (dataSource: DataSource) =>
  (
    (await dataSource.query(
      `SELECT pg_get_indexdef(i.indexrelid) AS def, i.indisvalid AS valid
       FROM pg_index i WHERE i.indexrelid = to_regclass($1)`,
      [DEDUP_IN_PROGRESS_INDEX],
    )) as { def: string; valid: boolean }[]
  )[0];

describe('dedup_records at scale: the IN_PROGRESS index', () => {
  beforeAll(() => quietLogs());

  it.each<TransactionMode>(['all', 'each', 'none'])(
    "the migrations create the partial index of IN_PROGRESS keys (transaction: '%s')",
    async (transaction) => {
      const opened = await openSchema();
      try {
        await opened.dataSource.runMigrations({ transaction });
        expect(await inProgressIndex(opened.dataSource)).toEqual({
          def: expect.stringMatching(/\(key\) WHERE \(state = 'IN_PROGRESS'::text\)$/),
          valid: true,
        });
        await opened.dataSource.undoLastMigration({
          transaction: transaction === 'all' ? 'each' : transaction,
        });
        expect(await inProgressIndex(opened.dataSource)).toBeUndefined();
      } finally {
        await closeSchema(opened);
      }
    },
  );

  it('rebuilds an index an interrupted CREATE INDEX CONCURRENTLY left invalid, and keeps a valid one', async () => {
    const opened = await openSchema();
    const migration = DEDUP_MIGRATIONS.map((M) => new M()).find((m) =>
      m.name.startsWith('AddDedupInProgressIndex'),
    );
    const runner = opened.dataSource.createQueryRunner();
    try {
      await opened.dataSource.runMigrations();
      await opened.dataSource.query(
        `UPDATE pg_index SET indisvalid = false WHERE indexrelid = to_regclass($1)`,
        [DEDUP_IN_PROGRESS_INDEX],
      );
      expect((await inProgressIndex(opened.dataSource))?.valid).toBe(false);
      await migration?.up(runner);
      expect((await inProgressIndex(opened.dataSource))?.valid).toBe(true);
      await migration?.up(runner);
      expect((await inProgressIndex(opened.dataSource))?.valid).toBe(true);
    } finally {
      await runner.release();
      await closeSchema(opened);
    }
  });

  describe('list by state and prefix', () => {
    let opened: { dataSource: DataSource; schema: string };
    let store: PostgresStore;
    /** Every row inserted: 2 scopes × 40 keys, every third IN_PROGRESS, every fifth expired. */
    const rows: { key: string; state: 'IN_PROGRESS' | 'COMPLETED'; live: boolean }[] = [];

    beforeAll(async () => {
      opened = await openSchema();
      await opened.dataSource.runMigrations();
      store = new PostgresStore(opened.dataSource, new DedupMetrics());
      for (const scope of ['orders', 'orders-eu'])
        for (let i = 0; i < 40; i++)
          rows.push({
            key: `p:${scope}:k${String(i).padStart(2, '0')}`,
            state: i % 3 === 0 ? 'IN_PROGRESS' : 'COMPLETED',
            live: i % 5 !== 0,
          });
      await opened.dataSource.query(
        `INSERT INTO dedup_records (key, scope, idem_key, state, token, fence, expires_at, lease_until)
         SELECT v.key, split_part(v.key, ':', 2), split_part(v.key, ':', 3), v.state, 't', n,
                now() + CASE WHEN v.live THEN interval '1 hour' ELSE interval '-1 hour' END,
                CASE WHEN v.state = 'IN_PROGRESS' THEN now() + interval '1 hour' END
         FROM unnest($1::text[], $2::text[], $3::boolean[]) WITH ORDINALITY AS v(key, state, live, n)`,
        [rows.map((r) => r.key), rows.map((r) => r.state), rows.map((r) => r.live)],
      );
      // Many COMPLETED rows around them, so the planner prefers the partial index for IN_PROGRESS.
      await opened.dataSource.query(
        `INSERT INTO dedup_records (key, scope, idem_key, state, token, fence, expires_at)
         SELECT 'p:orders:z' || i, 'orders', 'z' || i, 'COMPLETED', 't', i, now() + interval '1 hour'
         FROM generate_series(1, 20000) AS i`,
      );
      await opened.dataSource.query('ANALYZE dedup_records');
    });

    afterAll(() => closeSchema(opened));

    const allPages = async (query: {
      state?: 'IN_PROGRESS' | 'COMPLETED';
      prefix: string;
      limit: number;
    }) => {
      const keys: string[] = [];
      const pageSizes: number[] = [];
      let cursor: string | undefined;
      do {
        const page = await store.list({ ...query, cursor });
        keys.push(...page.items.map((item: StoredRecord) => item.storageKey));
        pageSizes.push(page.items.length);
        cursor = page.nextCursor;
      } while (cursor !== undefined);
      return { keys, pageSizes };
    };

    it('pages through the live IN_PROGRESS rows of a prefix in key order, exactly, across page boundaries', async () => {
      const expected = rows
        .filter((r) => r.live && r.state === 'IN_PROGRESS' && r.key.startsWith('p:orders:'))
        .map((r) => r.key)
        .sort();
      expect(expected).toHaveLength(11);
      for (const limit of [1, 4, 11, 12]) {
        const { keys, pageSizes } = await allPages({ state: 'IN_PROGRESS', prefix: 'p:orders:', limit });
        expect(keys).toEqual(expected);
        expect(pageSizes.slice(0, -1).every((size) => size === limit)).toBe(true);
      }
      // The prefix is a prefix of the key, not of the scope: "p:orders" also takes in orders-eu.
      const wider = await allPages({ state: 'IN_PROGRESS', prefix: 'p:orders', limit: 5 });
      expect(wider.keys).toEqual(
        rows
          .filter((r) => r.live && r.state === 'IN_PROGRESS')
          .map((r) => r.key)
          .sort(),
      );
    });

    it('the state=IN_PROGRESS list reads the partial index', async () => {
      const sink: { sql?: string; params?: unknown[] } = {};
      const capturing = new Proxy(opened.dataSource, {
        get(target, property, receiver) {
          if (property !== 'query') return Reflect.get(target, property, receiver) as unknown;
          return (sql: string, params: unknown[]) => {
            Object.assign(sink, { sql, params });
            return target.query(sql, params);
          };
        },
      });
      await new PostgresStore(capturing, new DedupMetrics()).list({
        state: 'IN_PROGRESS',
        prefix: 'p:orders:',
        limit: 50,
      });
      const plan = (await opened.dataSource.query(`EXPLAIN ${sink.sql}`, sink.params)) as {
        'QUERY PLAN': string;
      }[];
      expect(plan.map((row) => row['QUERY PLAN']).join('\n')).toContain(DEDUP_IN_PROGRESS_INDEX);
    });
  });
});
