import { Logger } from '@nestjs/common';
import { Test, TestingModule } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { TcpOutageProxy } from '@once/testing';
import Redis from 'ioredis';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { ClickRecorder, TRACKING_ENTITIES, TRACKING_MIGRATIONS, TrackingModule } from '../src';

const run = randomUUID().slice(0, 8);

/**
 * A Postgres outage while clicks keep coming: the clicks go to the Redis stream, and into Postgres
 * once it is back, each once; none is lost. Real Postgres (behind a proxy that cuts it off) and
 * real Redis.
 */
describe('click spill: a Postgres outage loses no click', () => {
  const proxy = new TcpOutageProxy(Number(new URL(process.env.DATABASE_URL as string).port || 5432));
  let moduleRef: TestingModule;
  let recorder: ClickRecorder;
  let redis: Redis;
  let direct: DataSource;
  const streamKey = `${process.env.REDIS_KEY_PREFIX}click-spill-${run}`;
  const campaign = `Spill_${run}`;

  beforeAll(async () => {
    Logger.overrideLogger(['error']);
    const port = await proxy.start();
    const url = new URL(process.env.DATABASE_URL as string);
    url.port = String(port);
    redis = new Redis(process.env.REDIS_URL as string);
    direct = new DataSource({ type: 'postgres', url: process.env.DATABASE_URL });
    await direct.initialize();
    moduleRef = await boot(url.toString());
    recorder = moduleRef.get(ClickRecorder);
  });

  const boot = async (databaseUrl: string) => {
    const created = await Test.createTestingModule({
      imports: [
        TypeOrmModule.forRoot({
          type: 'postgres',
          url: databaseUrl,
          entities: TRACKING_ENTITIES,
          migrations: TRACKING_MIGRATIONS,
          migrationsRun: true,
          synchronize: false,
          extra: { connectionTimeoutMillis: 1000 },
        }),
        TrackingModule.forRoot({
          baseUrl: 'https://site.example',
          secrets: ['e2e-secret-0123456789abcdef012345'],
          recordClicks: true,
          clickRecorder: { batchSize: 50, flushIntervalMs: 60_000 },
          clickSpill: { redis, streamKey },
        }),
      ],
    }).compile();
    await created.init();
    return created;
  };

  afterAll(async () => {
    await moduleRef?.close();
    await redis?.del(streamKey);
    await redis?.quit();
    await direct?.destroy();
    await proxy.stop();
  });

  const rowsOf = async (campaignName: string) =>
    Number(
      (
        await direct.query(
          'SELECT count(*) AS n, count(DISTINCT path) AS d FROM tracking_clicks WHERE campaign = $1',
          [campaignName],
        )
      )[0].n,
    );
  const distinctPaths = async (campaignName: string) =>
    Number(
      (
        await direct.query('SELECT count(DISTINCT path) AS d FROM tracking_clicks WHERE campaign = $1', [
          campaignName,
        ])
      )[0].d,
    );

  it('600 clicks over an outage: spilled while Postgres is cut off, in Postgres once each after it is back', async () => {
    let n = 0;
    const record = (count: number) => {
      for (let i = 0; i < count; i++)
        recorder.record({ path: `/p/${n++}`, campaign, userAgentClass: 'browser', bot: false });
    };
    record(100);
    await recorder.flush();
    expect(await rowsOf(campaign)).toBe(100);

    proxy.cut();
    for (let round = 0; round < 4; round++) {
      record(100);
      await recorder.flush();
    }
    expect(await rowsOf(campaign)).toBe(100);
    expect(await redis.xlen(streamKey)).toBe(400);
    expect(recorder.pending).toBe(0);

    proxy.restore();
    record(100);
    // The first flush after the refusal still spills (Postgres is left alone for a second).
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await recorder.flush();
    await recorder.flush();
    expect(await rowsOf(campaign)).toBe(600);
    expect(await distinctPaths(campaign)).toBe(600);
    expect(await redis.xlen(streamKey)).toBe(0);
  });

  it('another replica (or a restart) drains what is left in the stream, and a click already written lands once', async () => {
    const again = `${campaign}_again`;
    recorder.record({ path: '/once', campaign: again, userAgentClass: 'browser', bot: false });
    await recorder.flush();
    const [row] = await direct.query('SELECT click_id, clicked_at FROM tracking_clicks WHERE campaign = $1', [
      again,
    ]);
    // The same click spilled as well, as a replica that lost the INSERT's answer would have.
    await redis.xadd(
      streamKey,
      '*',
      'c',
      JSON.stringify({
        clickId: row.click_id,
        clickedAt: new Date(row.clicked_at).toISOString(),
        path: '/once',
        campaign: again,
        recipientId: null,
        messageKey: null,
        content: null,
        term: null,
        userAgentClass: 'browser',
        bot: false,
        botReason: null,
      }),
    );
    const replica = await boot(process.env.DATABASE_URL as string);
    try {
      const other = replica.get(ClickRecorder);
      other.record({ path: '/twice', campaign: again, userAgentClass: 'browser', bot: false });
      await other.flush();
      expect(await rowsOf(again)).toBe(2);
      expect(await redis.xlen(streamKey)).toBe(0);
    } finally {
      await replica.close();
    }
  });
});
