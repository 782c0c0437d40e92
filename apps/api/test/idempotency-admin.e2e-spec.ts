import { INestApplication, Logger } from '@nestjs/common';
import { DedupMetrics, IdempotencyService } from '@once/dedup';
import { MailService } from '@once/mail';
import { waitFor } from '@once/testing';
import { ClickRecorder, LinkBuilder } from '@once/tracking';
import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { bootstrap } from '../src/bootstrap';

const TOKEN = 'e2e-idempotency-admin-token-0123';
const CHROME =
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';

interface RecordBody {
  scope: string;
  key: string;
  state: string;
}

interface CauseCounts {
  redelivery: number;
  producerDuplicate: number;
  unknown: number;
  total: number;
}

interface ScopeDuplicates {
  scope: string;
  suppressed: CauseCounts;
  deferred: CauseCounts;
  payloadMismatches: number;
}

describe('admin API: idempotency records and stats', () => {
  const run = randomUUID().slice(0, 8);
  // Scopes of this run only: other suites of the same run share the database and Redis prefix.
  const scope = `admin-e2e-${run}`;
  const admin = { Authorization: `Bearer ${TOKEN}` };
  let app: INestApplication;
  let idempotency: IdempotencyService;
  const server = () => app.getHttpServer();

  beforeAll(async () => {
    app = await bootstrap({
      env: {
        PORT: '0',
        ADMIN_TOKENS: TOKEN,
        DATABASE_MIGRATE_ON_BOOT: 'true',
        // A namespace of its own: dedup records, duplicate counters and the admin rate limit.
        REDIS_KEY_PREFIX: `${process.env.REDIS_KEY_PREFIX}idempotency-admin:`,
        ADMIN_RATE_LIMIT_PER_MINUTE: '10000',
      },
    });
    idempotency = app.get(IdempotencyService);
    for (let n = 1; n <= 5; n++) await idempotency.run(`order-${n}`, async () => `result ${n}`, { scope });
    const busy = await idempotency.claim('busy-1', { scope, leaseMs: 120_000, messageId: 'm-busy' });
    expect(busy.status).toBe('claimed');
  });

  afterAll(async () => {
    jest.restoreAllMocks();
    await app?.close();
  });

  it('rejects a missing or wrong token on every new route, and changes nothing', async () => {
    const routes = [
      request(server()).get('/admin/idempotency'),
      request(server()).get(`/admin/idempotency/${scope}/order-1`),
      request(server()).delete(`/admin/idempotency/${scope}/order-1`),
      request(server()).get('/admin/stats'),
    ];
    for (const route of routes) {
      const response = await route.expect(401);
      expect(response.body).toMatchObject({
        statusCode: 401,
        message: expect.stringContaining('admin token'),
      });
    }
    for (const wrong of ['Bearer wrong-token-wrong-token-0000', `Bearer ${TOKEN}x`]) {
      await request(server()).get('/admin/idempotency').set('Authorization', wrong).expect(401);
      await request(server()).get('/admin/stats').set('Authorization', wrong).expect(401);
      await request(server())
        .delete(`/admin/idempotency/${scope}/order-1`)
        .set('Authorization', wrong)
        .expect(401);
    }
    expect(await idempotency.get('order-1', { scope })).toMatchObject({ state: 'COMPLETED' });
  });

  it('lists records by scope, state and key prefix, page by page with a cursor', async () => {
    const keys: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const response: request.Response = await request(server())
        .get('/admin/idempotency')
        .query({ scope, limit: 2, ...(cursor ? { cursor } : {}) })
        .set(admin)
        .expect(200);
      expect(response.body.items.length).toBeLessThanOrEqual(2);
      keys.push(...response.body.items.map((item: RecordBody) => item.key));
      cursor = response.body.nextCursor;
      pages++;
    } while (cursor);
    expect(keys).toEqual(['busy-1', 'order-1', 'order-2', 'order-3', 'order-4', 'order-5']);
    expect(pages).toBe(3);

    const completed = await request(server())
      .get('/admin/idempotency')
      .query({ scope, state: 'COMPLETED', limit: 50 })
      .set(admin)
      .expect(200);
    expect(completed.body.items).toHaveLength(5);
    expect(completed.body.nextCursor).toBeNull();
    const inProgress = await request(server())
      .get('/admin/idempotency')
      .query({ scope, state: 'IN_PROGRESS' })
      .set(admin)
      .expect(200);
    expect(inProgress.body.items).toEqual([
      expect.objectContaining({ scope, key: 'busy-1', state: 'IN_PROGRESS', messageId: 'm-busy' }),
    ]);
    const byPrefix = await request(server())
      .get('/admin/idempotency')
      .query({ prefix: `${scope}:order-3` })
      .set(admin)
      .expect(200);
    expect(byPrefix.body.items.map((item: RecordBody) => item.key)).toEqual(['order-3']);
  });

  it('validates list queries with field-level errors', async () => {
    for (const query of [{ state: 'DONE' }, { limit: '0' }, { cursor: 'not a cursor!' }, { scope: 'a:b' }]) {
      const response = await request(server()).get('/admin/idempotency').query(query).set(admin).expect(400);
      expect(response.body).toMatchObject({ statusCode: 400, message: 'validation failed' });
      expect(response.body.details).toEqual([
        expect.objectContaining({ field: Object.keys(query)[0], message: expect.any(String) }),
      ]);
    }
  });

  it('answers 400 naming the problem for a key or scope no store could hold, and touches nothing', async () => {
    const cases: [string, string, string][] = [
      // NUL and C0 controls: refused by the app-wide input guard before the route's own rules.
      [`${scope}/a%00b`, 'key', 'contains NUL (U+0000) at index 1'],
      [`${scope}/a%09b`, 'key', 'contains control character U+0009 at index 1'],
      [`${scope}/%C2%85`, 'key', 'the key contains control character U+0085 at index 0'],
      [`${scope}/${'x'.repeat(513)}`, 'key', 'the key is 513 bytes; at most 512 (UTF-8)'],
      // 300 characters: within the old character bound, but 600 bytes.
      [`${scope}/${encodeURIComponent('é'.repeat(300))}`, 'key', 'the key is 600 bytes; at most 512 (UTF-8)'],
      ['s%00/order-2', 'scope', 'contains NUL (U+0000) at index 1'],
      [`${'s'.repeat(201)}/order-2`, 'scope', 'the scope is 201 bytes; at most 200 (UTF-8)'],
      ['a%3Ab/order-2', 'scope', 'the scope contains ":" (it separates scope from key)'],
    ];
    for (const [path, field, message] of cases) {
      for (const method of ['get', 'delete'] as const) {
        const response = await request(server())[method](`/admin/idempotency/${path}`).set(admin).expect(400);
        expect([method, path, response.body]).toEqual([
          method,
          path,
          {
            statusCode: 400,
            error: 'Bad Request',
            message: 'validation failed',
            details: [{ field, message }],
          },
        ]);
      }
    }
    expect(await idempotency.get('order-2', { scope })).toMatchObject({ state: 'COMPLETED' });
  });

  it('answers 400, not 500, for a path that is not valid percent-encoded UTF-8', async () => {
    for (const path of [`${scope}/%ED%A0%80`, `${scope}/%FF`, `${scope}/%E0%A4%A`]) {
      const response = await request(server()).get(`/admin/idempotency/${path}`).set(admin);
      expect([path, response.status]).toEqual([path, 400]);
    }
  });

  it('validates list scope and prefix with the same rules (400, never a store error)', async () => {
    const cases: [Record<string, string>, string, RegExp][] = [
      [{ prefix: 'a\u0000' }, 'prefix', /contains NUL \(U\+0000\) at index 1/],
      [{ prefix: `${scope}:k\u0000` }, 'prefix', /contains NUL \(U\+0000\) at index \d+/],
      [{ prefix: `${scope}:k\u0085` }, 'prefix', /the key contains control character U\+0085 at index 1/],
      [{ prefix: `${scope}:${'é'.repeat(300)}` }, 'prefix', /the key is 600 bytes/],
      [{ scope: 's\u0007' }, 'scope', /contains control character U\+0007 at index 1/],
      [{ scope, prefix: 'k\u0000' }, 'prefix', /contains NUL/],
    ];
    for (const [query, field, message] of cases) {
      const response = await request(server()).get('/admin/idempotency').query(query).set(admin).expect(400);
      expect(response.body).toMatchObject({ statusCode: 400, message: 'validation failed' });
      expect(response.body.details).toEqual([{ field, message: expect.stringMatching(message) }]);
    }
  });

  it('gets, lists and forgets a non-ASCII key exactly (URL-encoded in the path)', async () => {
    const key = 'clé:ü 😀/%_*?[x]';
    await idempotency.run(key, async () => 'unicode', { scope });
    const path = `/admin/idempotency/${scope}/${encodeURIComponent(key)}`;
    const got = await request(server()).get(path).set(admin).expect(200);
    expect(got.body).toMatchObject({ scope, key, state: 'COMPLETED', result: 'unicode' });
    const listed = await request(server())
      .get('/admin/idempotency')
      .query({ scope, prefix: 'clé:' })
      .set(admin)
      .expect(200);
    expect(listed.body.items.map((item: RecordBody) => item.key)).toEqual([key]);
    await request(server()).delete(path).set(admin).expect(200);
    expect(await idempotency.get(key, { scope })).toBeNull();
  });

  it('gets one record, 404 for an unknown key', async () => {
    const response = await request(server())
      .get(`/admin/idempotency/${scope}/order-2`)
      .set(admin)
      .expect(200);
    expect(response.body).toMatchObject({ scope, key: 'order-2', state: 'COMPLETED', result: 'result 2' });
    const missing = await request(server()).get(`/admin/idempotency/${scope}/nope`).set(admin).expect(404);
    expect(missing.body).toMatchObject({ statusCode: 404, message: expect.stringContaining('nope') });
  });

  it('forgets a record (audited) so the next delivery runs again', async () => {
    const audit = jest.spyOn(Logger.prototype, 'log');
    const response = await request(server())
      .delete(`/admin/idempotency/${scope}/order-1`)
      .query({ reason: 'customer asked for a resend' })
      .set(admin)
      .expect(200);
    expect(response.body).toMatchObject({
      forgotten: true,
      previous: { scope, key: 'order-1', state: 'COMPLETED' },
    });
    expect(audit).toHaveBeenCalledWith(
      expect.objectContaining({
        msg: 'audit: idempotency record forgotten',
        actor: expect.stringMatching(/^token:[0-9a-f]{8}$/),
        scope,
        idempotencyKey: 'order-1',
        previousState: 'COMPLETED',
        force: false,
        reason: 'customer asked for a resend',
      }),
    );
    audit.mockRestore();

    await request(server()).get(`/admin/idempotency/${scope}/order-1`).set(admin).expect(404);
    await request(server()).delete(`/admin/idempotency/${scope}/order-1`).set(admin).expect(404);
    let ran = 0;
    await expect(idempotency.run('order-1', async () => ++ran, { scope })).resolves.toBe(1);
    await expect(idempotency.run('order-1', async () => ++ran, { scope })).resolves.toBe(1);
    expect(ran).toBe(1);
  });

  it('refuses to release a record a live worker holds unless forced', async () => {
    const refused = await request(server())
      .delete(`/admin/idempotency/${scope}/busy-1`)
      .set(admin)
      .expect(409);
    expect(refused.body).toMatchObject({ statusCode: 409, message: expect.stringContaining('force=true') });
    expect(await idempotency.get('busy-1', { scope })).toMatchObject({ state: 'IN_PROGRESS' });

    const audit = jest.spyOn(Logger.prototype, 'log');
    const forced = await request(server())
      .delete(`/admin/idempotency/${scope}/busy-1`)
      .query({ force: 'true' })
      .set(admin)
      .expect(200);
    expect(forced.body.previous).toMatchObject({ state: 'IN_PROGRESS', messageId: 'm-busy' });
    expect(audit).toHaveBeenCalledWith(
      expect.objectContaining({
        msg: 'audit: idempotency record forgotten',
        idempotencyKey: 'busy-1',
        previousState: 'IN_PROGRESS',
        leaseHeld: true,
        force: true,
      }),
    );
    audit.mockRestore();
    expect(await idempotency.get('busy-1', { scope })).toBeNull();
  });

  it('reports duplicates by cause, dedup records, mail ledger, clicks and queues', async () => {
    const mineOf = (body: { duplicates: ScopeDuplicates[] }) =>
      body.duplicates.find((entry) => entry.scope === scope);
    const stats = async (query: Record<string, string> = {}) =>
      (await request(server()).get('/admin/stats').query(query).set(admin).expect(200)).body;
    const mailBefore = (await stats()).mail;

    // Duplicates as a worker reports them (the SQS runner sets cause and messageId), and one plain duplicate.
    const metrics = app.get(DedupMetrics);
    metrics.increment('duplicate-completed', { scope, cause: 'producer-duplicate', messageId: 'd1' });
    metrics.increment('duplicate-completed', { scope, cause: 'producer-duplicate', messageId: 'd2' });
    metrics.increment('duplicate-completed', { scope, cause: 'redelivery', messageId: 'd3' });
    metrics.increment('duplicate-in-flight', { scope, cause: 'redelivery', messageId: 'd4' });
    await idempotency.run('order-2', async () => 'never runs', { scope });
    // The same key with another payload: counted and shown, still a duplicate.
    await idempotency.run('fingerprinted', async () => 'first', { scope, payload: { amount: 1 } });
    await idempotency.run('fingerprinted', async () => 'never runs', { scope, payload: { amount: 2 } });
    const fingerprinted = await request(server())
      .get(`/admin/idempotency/${scope}/fingerprinted`)
      .set(admin)
      .expect(200);
    expect(fingerprinted.body.payloadHash).toMatch(/^[A-Za-z0-9_-]{22}$/);

    await app.get(MailService).send({
      idempotencyKey: `stats-e2e:${run}`,
      to: 'stats-reader@example.com',
      subject: 'Hi',
      text: 'Hello',
    });
    const campaign = `Stats_${run}`;
    const link = new URL(app.get(LinkBuilder).build('/updates/2026-11-22/', { campaign, recipientId: 7 }));
    await request(server()).get(`${link.pathname}${link.search}`).set('User-Agent', CHROME).expect(302);
    await app.get(ClickRecorder).flush();

    // Counters are written in the background: wait until the last one landed.
    const body = await waitFor('the duplicate counters', async () => {
      const current = await stats({ campaign });
      return mineOf(current)?.deferred.total === 1 && mineOf(current)?.suppressed.total === 6
        ? current
        : undefined;
    });
    // The plain duplicates (no SQS message, so no cause): the one above and the re-run of order-1.
    expect(mineOf(body)).toEqual({
      scope,
      suppressed: { redelivery: 1, producerDuplicate: 2, unknown: 3, total: 6 } satisfies CauseCounts,
      deferred: { redelivery: 1, producerDuplicate: 0, unknown: 0, total: 1 } satisfies CauseCounts,
      payloadMismatches: 1,
    });
    expect(body.dedupRecords).toContainEqual({ scope, inProgress: 0, completed: 6, expired: 0 });
    expect(body.mail.byStatus.sent).toBe(mailBefore.byStatus.sent + 1);
    expect(body.mail.total).toBe(mailBefore.total + 1);
    expect(body.clicks).toMatchObject({ campaign, totals: { clicks: 1, uniqueRecipients: 1, botHits: 0 } });
    expect(body.queues.map((queue: { name: string }) => queue.name).sort()).toEqual(['jobs', 'send-email']);
    expect(body.queues[0]).toMatchObject({ deadLetter: { visible: expect.any(Number) } });
  });

  it('validates the stats range with the same error body', async () => {
    const bad = await request(server()).get('/admin/stats?from=yesterday').set(admin).expect(400);
    expect(bad.body).toMatchObject({
      statusCode: 400,
      message: 'validation failed',
      details: [expect.objectContaining({ field: 'from' })],
    });
    const reversed = await request(server())
      .get('/admin/stats?from=2026-02-01&to=2026-01-01')
      .set(admin)
      .expect(400);
    expect(reversed.body.details).toEqual([{ field: 'from', message: 'must be before to' }]);
  });

  it('documents the new routes in OpenAPI', async () => {
    const spec = await request(server()).get('/docs-json').expect(200);
    expect(Object.keys(spec.body.paths)).toEqual(
      expect.arrayContaining(['/admin/idempotency', '/admin/idempotency/{scope}/{key}', '/admin/stats']),
    );
    expect(spec.body.paths['/admin/idempotency/{scope}/{key}'].delete.parameters).toEqual(
      expect.arrayContaining([expect.objectContaining({ name: 'force', in: 'query' })]),
    );
  });
});
