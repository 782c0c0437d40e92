import { Logger } from '@nestjs/common';
import { Test, TestingModule } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import {
  ClickInput,
  ClickRecorder,
  ClickSummaryService,
  TRACKING_ENTITIES,
  TRACKING_MIGRATIONS,
  TrackingModule,
} from '../src';

// Campaign names unique to this run keep the assertions independent of other rows in the database.
const run = randomUUID().slice(0, 8);
const daily = `Daily_${run}`;
const weekly = `Weekly_${run}`;

function bootModule(): Promise<TestingModule> {
  return Test.createTestingModule({
    imports: [
      TypeOrmModule.forRoot({
        type: 'postgres',
        url: process.env.DATABASE_URL,
        entities: TRACKING_ENTITIES,
        migrations: TRACKING_MIGRATIONS,
        migrationsRun: true,
        synchronize: false,
      }),
      TrackingModule.forRoot({
        baseUrl: 'https://site.example',
        secrets: ['e2e-secret-0123456789abcdef012345'],
        recordClicks: true,
        clickRecorder: { batchSize: 50, flushIntervalMs: 60_000 },
      }),
    ],
  }).compile();
}

const hit = (day: string, campaign: string, recipientId: string | null, bot = false): ClickInput => ({
  path: '/updates/haml-3.1.2/haml-3.2.0.rc.3/11765/',
  campaign,
  recipientId,
  userAgentClass: bot ? 'security-scanner' : 'browser',
  bot,
  botReason: bot ? 'user-agent' : null,
  clickedAt: new Date(`${day}Z`),
});

describe('click tracking on Postgres', () => {
  let moduleRef: TestingModule;
  let recorder: ClickRecorder;
  let summary: ClickSummaryService;
  let dataSource: DataSource;

  beforeAll(async () => {
    Logger.overrideLogger(['error']);
    moduleRef = await bootModule();
    await moduleRef.init();
    recorder = moduleRef.get(ClickRecorder);
    summary = moduleRef.get(ClickSummaryService);
    dataSource = moduleRef.get(DataSource);
  });

  afterAll(async () => {
    await moduleRef?.close();
  });

  it('creates the table through the migration, not synchronize', async () => {
    const migrations: Array<{ name: string }> = await dataSource.query('SELECT name FROM migrations');
    expect(migrations.map((m) => m.name)).toEqual(
      expect.arrayContaining(['CreateTrackingClicks1763930000000', 'AddTrackingClickId1764950000000']),
    );
    const columns: Array<{ column_name: string }> = await dataSource.query(
      "SELECT column_name FROM information_schema.columns WHERE table_name = 'tracking_clicks' ORDER BY column_name",
    );
    expect(columns.map((c) => c.column_name)).toEqual([
      'bot',
      'bot_reason',
      'campaign',
      'click_id',
      'clicked_at',
      'content',
      'id',
      'message_key',
      'path',
      'recipient_id',
      'term',
      'user_agent_class',
    ]);
  });

  it('writes buffered clicks in one flush, with every field', async () => {
    recorder.record({
      ...hit('2026-03-01T10:00:00', daily, '1'),
      messageKey: 'k-1',
      content: 'top',
      term: 'haml',
    });
    recorder.record({ ...hit('2026-03-01T10:05:00', daily, '2', true), botReason: 'head-request' });
    expect(recorder.pending).toBe(2);
    expect(await recorder.flush()).toBe(2);

    const rows = await dataSource.query(
      `SELECT path, campaign, recipient_id, message_key, content, term, user_agent_class, bot, bot_reason, clicked_at
       FROM tracking_clicks WHERE campaign = $1 ORDER BY clicked_at`,
      [daily],
    );
    expect(rows).toEqual([
      {
        path: '/updates/haml-3.1.2/haml-3.2.0.rc.3/11765/',
        campaign: daily,
        recipient_id: '1',
        message_key: 'k-1',
        content: 'top',
        term: 'haml',
        user_agent_class: 'browser',
        bot: false,
        bot_reason: null,
        clicked_at: new Date('2026-03-01T10:00:00Z'),
      },
      expect.objectContaining({
        recipient_id: '2',
        user_agent_class: 'security-scanner',
        bot: true,
        bot_reason: 'head-request',
      }),
    ]);
  });

  it('summarises clicks per campaign and UTC day, unique recipients and bot share', async () => {
    // Already stored for `daily` on 03-01: one click by recipient 1, one bot hit by recipient 2.
    [
      hit('2026-03-01T23:59:59', daily, '1'),
      hit('2026-03-01T12:00:00', daily, '3'),
      hit('2026-03-02T00:00:00', daily, '1'),
      hit('2026-03-02T08:00:00', daily, null),
      hit('2026-03-02T08:00:01', daily, '4', true),
      hit('2026-03-02T08:00:02', daily, '4', true),
      hit('2026-03-02T09:00:00', weekly, '1'),
      hit('2026-03-03T00:00:00', daily, '9'), // outside [from, to)
      hit('2026-02-28T23:59:59', daily, '9'), // outside [from, to)
    ].forEach((click) => recorder.record(click));
    await recorder.flush();

    const range = { from: new Date('2026-03-01T00:00:00Z'), to: new Date('2026-03-03T00:00:00Z') };
    const all = await summary.summarize(range);
    const mine = (rows: Array<{ campaign: string }>) => rows.filter((row) => row.campaign.endsWith(run));

    expect(mine(all.days)).toEqual([
      { day: '2026-03-01', campaign: daily, clicks: 3, botHits: 1, uniqueRecipients: 2, botShare: 0.25 },
      { day: '2026-03-02', campaign: daily, clicks: 2, botHits: 2, uniqueRecipients: 1, botShare: 0.5 },
      { day: '2026-03-02', campaign: weekly, clicks: 1, botHits: 0, uniqueRecipients: 1, botShare: 0 },
    ]);
    expect(mine(all.campaigns)).toEqual([
      { campaign: daily, clicks: 5, botHits: 3, uniqueRecipients: 2, botShare: 0.375 },
      { campaign: weekly, clicks: 1, botHits: 0, uniqueRecipients: 1, botShare: 0 },
    ]);

    const onlyDaily = await summary.summarize({ ...range, campaign: daily });
    expect(onlyDaily).toEqual({
      from: '2026-03-01T00:00:00.000Z',
      to: '2026-03-03T00:00:00.000Z',
      campaign: daily,
      totals: { clicks: 5, botHits: 3, uniqueRecipients: 2, botShare: 0.375 },
      campaigns: [{ campaign: daily, clicks: 5, botHits: 3, uniqueRecipients: 2, botShare: 0.375 }],
      days: mine(all.days).filter((row) => row.campaign === daily),
    });
  });

  it('returns zeros for an empty range', async () => {
    const empty = await summary.summarize({
      from: new Date('2001-01-01T00:00:00Z'),
      to: new Date('2001-01-02T00:00:00Z'),
      campaign: daily,
    });
    expect(empty.totals).toEqual({ clicks: 0, botHits: 0, uniqueRecipients: 0, botShare: 0 });
    expect(empty.days).toEqual([]);
    expect(empty.campaigns).toEqual([]);
  });

  it('flushes what is still buffered when the application shuts down', async () => {
    const campaign = `Shutdown_${run}`;
    const other = await bootModule();
    await other.init();
    other.get(ClickRecorder).record(hit('2026-03-05T10:00:00', campaign, '1'));
    await other.close();

    const [{ count }] = await dataSource.query(
      'SELECT count(*)::int AS count FROM tracking_clicks WHERE campaign = $1',
      [campaign],
    );
    expect(count).toBe(1);
  });
});
