import { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import {
  ClickRecorder,
  encodeTarget,
  LinkBuilder,
  LinkVerifier,
  signLink,
  TRACKING_ENTITIES,
  TRACKING_MIGRATIONS,
  TrackingOptions,
} from '@once/tracking';
import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { AppConfigModule, RedisModule } from '@once/platform';
import { DailyModule } from '../src/daily/daily.module';

const SITE = 'https://site.example';
const CURRENT = 'current-secret-e2e-0123456789abcdef01';
const PREVIOUS = 'previous-secret-e2e-0123456789abcdef0';
const SEED_PATH = '/updates/haml-3.1.2/haml-3.2.0.rc.3/11765/';
const SEED_UTM = 'utm_source=email&utm_medium=email&utm_campaign=Daily_Notification';
const CHROME =
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';

const run = randomUUID().slice(0, 8);
const ADMIN_TOKEN = 'daily-e2e-admin-token-0123456789';
const ADMIN = { Authorization: `Bearer ${ADMIN_TOKEN}` };
const options: TrackingOptions = {
  baseUrl: SITE,
  secrets: [CURRENT, PREVIOUS],
  pathAllowlist: ['/updates/', '/projects/', '/search'],
  // Only explicit flushes (and shutdown) write, so the tests see exactly when rows land.
  clickRecorder: { flushIntervalMs: 60_000, batchSize: 1000 },
};

async function createApp(overrides: Partial<TrackingOptions> = {}): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({
    imports: [
      TypeOrmModule.forRoot({
        type: 'postgres',
        url: process.env.DATABASE_URL,
        entities: TRACKING_ENTITIES,
        migrations: TRACKING_MIGRATIONS,
        migrationsRun: true,
        synchronize: false,
      }),
      // What the admin guard on ClicksAdminController reads.
      AppConfigModule.forRoot({
        ADMIN_TOKENS: [ADMIN_TOKEN],
        ADMIN_RATE_LIMIT_PER_MINUTE: 10_000,
        REDIS_KEY_PREFIX: `${process.env.REDIS_KEY_PREFIX}daily:${run}:`,
      }),
      RedisModule.forRoot({ url: process.env.REDIS_URL!, connectionName: 'daily-e2e' }),
      DailyModule.forRoot({ ...options, ...overrides }),
    ],
  }).compile();
  const app = moduleRef.createNestApplication({ logger: ['error'] });
  await app.init();
  return app;
}

/** Path and query of a link, as a browser sends it. */
const requestTarget = (link: string) => link.slice(SITE.length);
/** A link to any target, signed with the real secret (as if the key leaked): only the target checks stand. */
const signedQuery = (target: string, campaign = 'Daily_Notification', recipientId = '42') =>
  `?${encodeTarget(target)}&c=${campaign}&r=${recipientId}&s=${signLink(CURRENT, { target, campaign, recipientId })}`;

/** Request targets an attacker can send; each decodes or resolves to something off-site or tampered. */
const HOSTILE_REQUESTS: ReadonlyArray<[string, string]> = [
  ['protocol-relative', '/daily/?//evil.com&c=x&s=AAAAAAAAAAAAAAAAAAAAAA'],
  ['backslash', '/daily/?/\\evil.com&c=x'],
  ['double backslash', '/daily/?\\\\evil.com'],
  ['encoded slashes', '/daily/?%2F%2Fevil.com&c=x'],
  ['double-encoded slashes', '/daily/?%252F%252Fevil.com&c=x'],
  ['encoded backslash', '/daily/?%2F%5Cevil.com'],
  ['encoded tab', '/daily/?/%09/evil.com&c=x'],
  ['encoded newline', '/daily/?/%0A/evil.com&c=x'],
  ['CRLF header injection', '/daily/?/%0D%0ALocation:%20https://evil.com&c=x'],
  ['javascript:', '/daily/?javascript:alert(1)&c=x'],
  ['encoded javascript:', '/daily/?javascript%3Aalert(1)&c=x'],
  ['data:', '/daily/?data:text/html,%3Cscript%3Ealert(1)%3C/script%3E&c=x'],
  ['absolute URL', '/daily/?https://evil.com/&c=x'],
  ['scheme without slashes', '/daily/?https:evil.com&c=x'],
  ['userinfo', '/daily/?//site.example@evil.com&c=x'],
  ['encoded userinfo', '/daily/?https:%2F%2Fsite.example%40evil.com&c=x'],
  ['dot segments to //', '/daily/?/updates/..//evil.com&c=x'],
  ['broken percent-encoding', '/daily/?/updates/%E0%A4%A&c=x'],
  ['the seed’s unsigned link', `/daily/?${SEED_PATH}`],
  ['empty', '/daily/'],
  ['signed protocol-relative', `/daily/${signedQuery('//evil.com/updates/')}`],
  ['signed backslash', `/daily/${signedQuery('/\\evil.com/updates/')}`],
  ['signed tab', `/daily/${signedQuery('/\t/evil.com/updates/')}`],
  ['signed absolute URL', `/daily/${signedQuery('https://evil.com/updates/')}`],
  ['signed other scheme', `/daily/${signedQuery('http:evil.com/updates/')}`],
  ['signed userinfo', `/daily/${signedQuery('//site.example@evil.com/updates/')}`],
  ['signed javascript:', `/daily/${signedQuery('javascript:alert(1)//%0A/updates/')}`],
  ['signed data:', `/daily/${signedQuery('data:text/html,/updates/')}`],
  ['signed dot segments', `/daily/${signedQuery('/updates/..//evil.com/updates/')}`],
  ['signed, outside the allowlist', `/daily/${signedQuery('/admin/users')}`],
  ['signed, allowlist escaped by ..', `/daily/${signedQuery('/updates/../admin/users')}`],
];

describe('GET /daily/ (signed click redirect)', () => {
  let app: INestApplication;
  let builder: LinkBuilder;
  let recorder: ClickRecorder;
  let dataSource: DataSource;

  beforeAll(async () => {
    app = await createApp();
    builder = app.get(LinkBuilder);
    recorder = app.get(ClickRecorder);
    dataSource = app.get(DataSource);
  });

  afterAll(async () => {
    await app?.close();
  });

  const clicksOf = async (campaign: string) => {
    await recorder.flush();
    return dataSource.query(
      `SELECT path, campaign, recipient_id, message_key, user_agent_class, bot, bot_reason
       FROM tracking_clicks WHERE campaign = $1 ORDER BY id`,
      [campaign],
    );
  };

  it("round-trips the seed's example: build → GET /daily/ → 302 to the same path with the UTM parameters", async () => {
    const link = builder.build(SEED_PATH, { campaign: 'Daily_Notification', recipientId: 42 });
    expect(link.startsWith(`${SITE}/daily/?${SEED_PATH}&`)).toBe(true);

    const res = await request(app.getHttpServer()).get(requestTarget(link)).set('User-Agent', CHROME);
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe(`${SITE}${SEED_PATH}?${SEED_UTM}`);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['referrer-policy']).toBe('no-referrer');

    const withoutSlash = await request(app.getHttpServer()).get(
      requestTarget(link).replace('/daily/?', '/daily?'),
    );
    expect(withoutSlash.headers.location).toBe(`${SITE}${SEED_PATH}?${SEED_UTM}`);
  });

  it("keeps the target's query and fragment and never overwrites its utm_*", async () => {
    const campaign = `Merge_${run}`;
    const link = builder.build('/search?q=haml%203&utm_source=rss#results', { campaign, content: 'hero' });
    const res = await request(app.getHttpServer()).get(requestTarget(link)).set('User-Agent', CHROME);
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe(
      `${SITE}/search?q=haml%203&utm_source=rss&utm_medium=email&utm_campaign=${campaign}&utm_content=hero#results`,
    );
  });

  it.each(HOSTILE_REQUESTS)('answers 400 without redirecting: %s', async (_name, target) => {
    const res = await request(app.getHttpServer()).get(target).set('User-Agent', CHROME);
    expect(res.status).toBe(400);
    expect(res.headers.location).toBeUndefined();
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.text).toContain('This link is not valid');
    expect(res.text).not.toContain('evil');
  });

  it('answers HEAD on an invalid link the same way, without a body', async () => {
    const res = await request(app.getHttpServer()).head(
      '/daily/?//evil.com/updates/&c=x&s=AAAAAAAAAAAAAAAAAAAAAA',
    );
    expect(res.status).toBe(400);
    expect(res.headers.location).toBeUndefined();
    expect(res.text).toBeUndefined();
  });

  it('refuses tampered signatures and swapped recipient or campaign', async () => {
    const campaign = `Tamper_${run}`;
    const link = requestTarget(builder.build(SEED_PATH, { campaign, recipientId: '42' }));
    const other = requestTarget(builder.build(SEED_PATH, { campaign: 'Weekly', recipientId: '7' }));
    const signature = link.slice(link.lastIndexOf('&s=') + 3);
    const flipped = `${signature[0] === 'A' ? 'B' : 'A'}${signature.slice(1)}`;
    const variants = [
      link.replace(`&s=${signature}`, `&s=${flipped}`),
      link.replace('&r=42', '&r=7'),
      link.replace(`c=${campaign}`, 'c=Weekly'),
      link.replace('&r=42', ''),
      other.replace(other.slice(other.lastIndexOf('&s=')), `&s=${signature}`),
      link.replace(SEED_PATH, '/updates/haml-3.1.2/haml-3.2.0.rc.3/11766/'),
    ];
    for (const variant of variants) {
      const res = await request(app.getHttpServer()).get(variant).set('User-Agent', CHROME);
      expect([variant, res.status, res.headers.location]).toEqual([variant, 400, undefined]);
    }
    expect(await clicksOf(campaign)).toEqual([]);
  });

  it('verifies links signed with the previous secret; new links use the current one', async () => {
    const campaign = `Rotation_${run}`;
    const oldLink = new LinkBuilder({ ...options, secrets: [PREVIOUS] }).build(SEED_PATH, { campaign });
    const res = await request(app.getHttpServer()).get(requestTarget(oldLink)).set('User-Agent', CHROME);
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe(
      `${SITE}${SEED_PATH}?utm_source=email&utm_medium=email&utm_campaign=${campaign}`,
    );

    const newLink = builder.build(SEED_PATH, { campaign });
    expect(new LinkVerifier({ ...options, secrets: [CURRENT] }).verify(newLink).ok).toBe(true);
    expect(new LinkVerifier({ ...options, secrets: [PREVIOUS] }).verify(newLink)).toEqual({
      ok: false,
      reason: 'bad-signature',
    });
  });

  it('records clicks and suspected bots in Postgres after answering, bots still redirected', async () => {
    const campaign = `Bots_${run}`;
    const link = requestTarget(
      builder.build(SEED_PATH, { campaign, recipientId: 42, messageKey: `digest-${run}` }),
    );
    const server = app.getHttpServer();
    const answers = [
      await request(server).get(link).set('User-Agent', CHROME),
      await request(server).head(link).set('User-Agent', CHROME),
      await request(server).get(link).set('User-Agent', 'Mozilla/5.0 (compatible; SafeLinks/1.0)'),
      await request(server)
        .get(link)
        .set('User-Agent', 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)'),
      await request(server).get(link).set('User-Agent', 'curl/8.5.0'),
      await request(server).get(link).set('User-Agent', ''),
    ];
    expect(answers.map((res) => [res.status, res.headers.location])).toEqual(
      answers.map(() => [
        302,
        `${SITE}${SEED_PATH}?utm_source=email&utm_medium=email&utm_campaign=${campaign}`,
      ]),
    );

    // Nothing is written in the request path: the rows appear when the buffer is flushed.
    const [{ count }] = await dataSource.query(
      'SELECT count(*)::int AS count FROM tracking_clicks WHERE campaign = $1',
      [campaign],
    );
    expect(count).toBe(0);

    const common = { path: SEED_PATH, campaign, recipient_id: '42', message_key: `digest-${run}` };
    expect(await clicksOf(campaign)).toEqual([
      { ...common, user_agent_class: 'browser', bot: false, bot_reason: null },
      { ...common, user_agent_class: 'browser', bot: true, bot_reason: 'head-request' },
      { ...common, user_agent_class: 'security-scanner', bot: true, bot_reason: 'user-agent' },
      { ...common, user_agent_class: 'crawler', bot: true, bot_reason: 'user-agent' },
      { ...common, user_agent_class: 'http-client', bot: true, bot_reason: 'user-agent' },
      { ...common, user_agent_class: 'empty', bot: true, bot_reason: 'user-agent' },
    ]);
  });

  describe('GET /admin/clicks/summary', () => {
    it('reports clicks per campaign and day, unique recipients and bot share', async () => {
      const campaign = `Summary_${run}`;
      const server = app.getHttpServer();
      const linkFor = (recipientId: string) =>
        requestTarget(builder.build(SEED_PATH, { campaign, recipientId }));
      await request(server).get(linkFor('1')).set('User-Agent', CHROME);
      await request(server).get(linkFor('1')).set('User-Agent', CHROME);
      await request(server).get(linkFor('2')).set('User-Agent', CHROME);
      await request(server).head(linkFor('3')).set('User-Agent', CHROME);
      await request(server).get(linkFor('3')).set('User-Agent', 'Mimecast URL Protect');
      await recorder.flush();

      const day = (offset: number) => new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10);
      await request(server).get('/admin/clicks/summary').query({ campaign }).expect(401);
      const res = await request(server)
        .get('/admin/clicks/summary')
        .set(ADMIN)
        .query({ from: day(-1), to: day(1), campaign });
      expect(res.status).toBe(200);
      const counts = { clicks: 3, botHits: 2, uniqueRecipients: 2, botShare: 0.4 };
      expect(res.body).toMatchObject({ campaign, totals: counts, campaigns: [{ campaign, ...counts }] });
      expect(res.body.from).toBe(`${day(-1)}T00:00:00.000Z`);
      expect(res.body.to).toBe(`${day(2)}T00:00:00.000Z`);
      const days: Array<{ clicks: number; botHits: number }> = res.body.days;
      expect(days.reduce((sum, row) => sum + row.clicks, 0)).toBe(3);
      expect(days.reduce((sum, row) => sum + row.botHits, 0)).toBe(2);
    });

    it.each([
      ['from=yesterday', 'from'],
      ['from=2026-11-02&to=2026-11-01', 'from'],
      ['from=2024-01-01&to=2026-01-01', 'to'],
      ['campaign=', 'campaign'],
      ['form=2026-11-01', 'form'],
    ])('answers 400 for ?%s', async (query, path) => {
      const res = await request(app.getHttpServer()).get(`/admin/clicks/summary?${query}`).set(ADMIN);
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ statusCode: 400, message: 'validation failed' });
      expect(res.body.details).toContainEqual({ field: path, message: expect.any(String) });
    });
  });
});

describe('GET /daily/ with invalidLinkBehaviour: redirect-root', () => {
  let app: INestApplication;

  beforeAll(async () => {
    app = await createApp({ invalidLinkBehaviour: 'redirect-root' });
  });

  afterAll(async () => {
    await app?.close();
  });

  it.each(HOSTILE_REQUESTS)('sends %s to the site root', async (_name, target) => {
    const res = await request(app.getHttpServer()).get(target);
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe(`${SITE}/`);
    expect(res.headers['cache-control']).toBe('no-store');
  });
});
