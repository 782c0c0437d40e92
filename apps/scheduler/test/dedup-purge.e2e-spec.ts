import { INestApplicationContext } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { getDataSourceToken } from '@nestjs/typeorm';
import { waitFor } from '@once/testing';
import { DataSource } from 'typeorm';
import { bootstrap } from '../src/bootstrap';
import { DEDUP_PURGE_BATCH, DEDUP_PURGE_JOB, DedupPurgeJob } from '../src/housekeeping/dedup-purge.job';

describe('dedup purge (scheduled housekeeping)', () => {
  const quiet = {
    DIGEST_CRON: 'off',
    REMINDER_CRON: 'off',
    SCHEDULER_CATCH_UP: 'false',
    OPS_PORT: '0',
    DATABASE_MIGRATE_ON_BOOT: 'true',
  };
  const running: INestApplicationContext[] = [];
  const boot = async (env: Record<string, string>) => {
    const app = await bootstrap({ env: { ...quiet, ...env } });
    running.push(app);
    return app;
  };
  const db = (app: INestApplicationContext) => app.get<DataSource>(getDataSourceToken());

  /** Inserts `count` records of `scope`, expired (`ttl` < 0) or live. */
  const insert = (app: INestApplicationContext, scope: string, count: number, ttl: string) =>
    db(app).query(
      `INSERT INTO dedup_records (key, scope, idem_key, state, token, fence, expires_at)
       SELECT $1 || $2 || ':k' || n, $2, 'k' || n, 'COMPLETED', 't', n, now() + $4::interval
         FROM generate_series(1, $3::int) AS n`,
      [`${process.env.REDIS_KEY_PREFIX}dedup:`, scope, count, ttl],
    );
  const count = async (app: INestApplicationContext, scope: string): Promise<number> => {
    const [row] = await db(app).query('SELECT count(*)::int AS n FROM dedup_records WHERE scope = $1', [
      scope,
    ]);
    return row.n;
  };

  afterEach(async () => {
    await Promise.all(running.splice(0).map((app) => app.close()));
  });

  it('deletes every expired record, batch after batch, and keeps the live ones', async () => {
    const app = await boot({ DEDUP_PURGE_CRON: 'off' });
    const expired = DEDUP_PURGE_BATCH * 2 + 5;
    await insert(app, 'purge-expired', expired, '-1 hour');
    await insert(app, 'purge-live', 3, '1 hour');

    expect(app.get(SchedulerRegistry).doesExist('cron', DEDUP_PURGE_JOB)).toBe(false);
    await expect(app.get(DedupPurgeJob).run()).resolves.toBe(expired);
    expect(await count(app, 'purge-expired')).toBe(0);
    expect(await count(app, 'purge-live')).toBe(3);
    await expect(app.get(DedupPurgeJob).run()).resolves.toBe(0);
  });

  it('runs on DEDUP_PURGE_CRON', async () => {
    const app = await boot({ DEDUP_PURGE_CRON: '* * * * * *' });
    expect(app.get(SchedulerRegistry).doesExist('cron', DEDUP_PURGE_JOB)).toBe(true);
    await insert(app, 'purge-cron', 7, '-1 minute');
    await insert(app, 'purge-cron-live', 2, '1 hour');

    await waitFor('the cron to purge the expired records', async () =>
      (await count(app, 'purge-cron')) === 0 ? true : undefined,
    );
    expect(await count(app, 'purge-cron-live')).toBe(2);
  });
});
