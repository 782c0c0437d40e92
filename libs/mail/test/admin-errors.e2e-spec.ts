import { Controller, Get, NotFoundException, Param, ServiceUnavailableException } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import request from 'supertest';
import { AdminErrorFilter, AdminErrorReporter, MailLedgerService } from '../src';
import {
  createMailTestApp,
  emailsTo,
  header,
  type MailTestApp,
  uniqueAddress,
} from './support/mail-e2e.harness';

const DB_PASSWORD = 'pg-Pa55word-from-config';
const AWS_KEY_ID = 'AKIAIOSFODNN7EXAMPLE';
const BEARER = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJl';
const SESSION = 'sess-8f14e45fceea167a5a36dedd4bea2543';
const API_KEY = 'ak-live-2b7e151628aed2a6abf71588';
const LINK_SIGNATURE = 'e3b0c44298fc1c149afbf4c8996fb924';

@Controller('demo')
class DemoController {
  @Get('digests/:id')
  digest(@Param('id') id: string): never {
    throw new Error(
      `cannot render digest ${id}: postgres://once:${DB_PASSWORD}@db/once refused (key ${AWS_KEY_ID})`,
    );
  }

  @Get('missing')
  missing(): never {
    throw new NotFoundException('no such digest');
  }

  @Get('unavailable')
  unavailable(): never {
    throw new ServiceUnavailableException('maintenance');
  }
}

describe('admin error mail (Redis throttle, ledger, SES emulator)', () => {
  let t: MailTestApp;
  let reporter: AdminErrorReporter;
  const admins = [uniqueAddress('admin'), uniqueAddress('oncall')];
  let now = new Date('2026-11-22T10:00:00.000Z');
  const WINDOW_MS = 15 * 60_000;

  beforeAll(async () => {
    t = await createMailTestApp(
      {
        adminErrors: {
          recipients: admins,
          from: 'errors@once.example',
          appName: 'api',
          appVersion: '1.4.2',
          environment: 'test',
          windowMs: WINDOW_MS,
          redact: { secrets: [DB_PASSWORD] },
        },
        clock: () => now,
      },
      { controllers: [DemoController], providers: [{ provide: APP_FILTER, useClass: AdminErrorFilter }] },
    );
    reporter = t.app.get(AdminErrorReporter);
  });

  afterAll(() => t.close());

  const getDigest = (id: number) =>
    request(t.app.getHttpServer())
      .get(`/demo/digests/${id}?s=${LINK_SIGNATURE}&page=2`)
      .set('Authorization', `Bearer ${BEARER}`)
      .set('Cookie', `session=${SESSION}`)
      .set('X-Api-Key', API_KEY)
      .set('User-Agent', 'once-e2e/1.0');

  it('mails an unhandled HTTP error once per fingerprint and window, redacted, and answers as usual', async () => {
    const first = await getDigest(41);
    expect(first.status).toBe(500);
    expect(first.body).toEqual({ statusCode: 500, message: 'Internal server error' });
    await reporter.flush();

    const second = await getDigest(42);
    expect(second.status).toBe(500);
    await reporter.flush();

    const emails = await emailsTo(admins[0]);
    expect(emails).toHaveLength(1);
    const [email] = emails;
    expect(email.destination.to).toEqual(admins);
    expect(email.from).toBe('errors@once.example');
    expect(email.subject).toContain('[Once] api http: Error: cannot render digest 41');
    const text = email.body.text ?? '';
    for (const expected of [
      'Method:     GET',
      `Path:       /demo/digests/41?s=[REDACTED]&page=2`,
      'Route:      /demo/digests/:id',
      'User agent: once-e2e/1.0',
      'App:         api',
      'Version:     1.4.2',
      'at DemoController.digest',
    ]) {
      expect(text).toContain(expected);
    }
    for (const secret of [DB_PASSWORD, AWS_KEY_ID, BEARER, SESSION, API_KEY, LINK_SIGNATURE]) {
      expect(`${email.subject}\n${text}`).not.toContain(secret);
    }

    const key = header(email, 'X-Once-Key') ?? '';
    expect(key).toMatch(/^admin-error:[0-9a-f]{16}:2026-11-22T10:00:00\.000Z$/);
    await expect(t.app.get(MailLedgerService).get(key)).resolves.toMatchObject({ status: 'sent' });

    now = new Date(now.getTime() + WINDOW_MS);
    await getDigest(43);
    await reporter.flush();
    const later = await emailsTo(admins[0]);
    expect(later).toHaveLength(2);
    expect(later[1].body.text).toContain(
      '1 more occurrence(s) of this error since the last report were not mailed.',
    );
  });

  it('does not mail client errors but mails 5xx HTTP exceptions', async () => {
    const before = (await emailsTo(admins[0])).length;
    expect((await request(t.app.getHttpServer()).get('/demo/missing')).status).toBe(404);
    await reporter.flush();
    expect(await emailsTo(admins[0])).toHaveLength(before);

    const unavailable = await request(t.app.getHttpServer()).get('/demo/unavailable');
    expect(unavailable.status).toBe(503);
    expect(unavailable.body).toMatchObject({ statusCode: 503, message: 'maintenance' });
    await reporter.flush();
    const emails = await emailsTo(admins[0]);
    expect(emails).toHaveLength(before + 1);
    expect(emails[emails.length - 1].subject).toContain('ServiceUnavailableException: maintenance');
  });

  it('reports worker and scheduler failures through the same path', async () => {
    const workerResult = await reporter.reportWorkerFailure(
      new Error(`handler crashed with token=${BEARER}`),
      {
        handler: 'send-email',
        queue: 'once-send-email',
        messageId: 'm-123',
        receiveCount: 3,
      },
    );
    const jobResult = await reporter.reportJobFailure(new Error('digest fan-out failed'), {
      job: 'daily-digest',
      slot: '2026-11-22T07:00:00.000Z',
    });
    expect(workerResult.status).toBe('sent');
    expect(jobResult.status).toBe('sent');

    const emails = await emailsTo(admins[1]);
    const worker = emails.find((email) => email.subject.includes('api worker: Error: handler crashed'));
    const job = emails.find((email) => email.subject.includes('api scheduler: Error: digest fan-out failed'));
    expect(worker?.body.text).toContain('"queue": "once-send-email"');
    expect(worker?.body.text).toContain('"messageId": "m-123"');
    expect(`${worker?.subject} ${worker?.body.text}`).not.toContain(BEARER);
    expect(job?.body.text).toContain('"job": "daily-digest"');
  });
});
