import { Controller, Get, Logger } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import {
  configuredSecrets,
  leakedItems,
  mailText,
  plantScenario,
  REDACTION_CORPUS,
  REDACTION_LOOKALIKES,
} from '@once/testing';
import request from 'supertest';
import { AdminErrorFilter, AdminErrorReporter } from '../src';
import {
  createMailTestApp,
  type MailTestApp,
  uniqueAddress,
  waitForEmails,
} from './support/mail-e2e.harness';

// One scenario per source, each carrying the whole corpus: a handful of mails (under the admin
// budget) carry every secret, and each source is a distinct fingerprint.
const http = plantScenario(REDACTION_CORPUS, 'http');
const worker = plantScenario(REDACTION_CORPUS, 'worker');
const scheduler = plantScenario(REDACTION_CORPUS, 'scheduler');

@Controller('corpus')
class CorpusController {
  @Get('http')
  fail(): never {
    throw http.error;
  }
}

describe('admin error mail through SES: the redaction corpus leaks nothing (HTTP, worker, scheduler)', () => {
  let t: MailTestApp;
  let reporter: AdminErrorReporter;
  const logLines: string[] = [];
  const admin = uniqueAddress('corpus-admin');

  beforeAll(async () => {
    t = await createMailTestApp(
      {
        adminErrors: {
          recipients: [admin],
          appName: 'corpus',
          appVersion: '1.0.0',
          environment: 'test',
          redact: { secrets: configuredSecrets() },
        },
      },
      { controllers: [CorpusController], providers: [{ provide: APP_FILTER, useClass: AdminErrorFilter }] },
    );
    reporter = t.app.get(AdminErrorReporter);
    // Every log line of the app, as text: the filter logs the error it mails, and must redact it too.
    const capture = (...parts: unknown[]) => logLines.push(JSON.stringify(parts));
    Logger.overrideLogger({ log: capture, error: capture, warn: capture, debug: capture, verbose: capture });
  });

  afterAll(() => t.close());

  it('mails every source with 0 of the corpus secrets in any encoding, and keeps the look-alikes', async () => {
    const response = await request(t.app.getHttpServer()).get(http.request.url).set(http.request.headers);
    expect(response.status).toBe(500);

    const reports = await Promise.all([
      reporter.reportWorkerFailure(worker.error, {
        handler: 'corpus-worker',
        queue: 'once-send-email',
        messageId: 'm-1',
        ...worker.details,
      }),
      ...worker.thrown.map((value, index) =>
        reporter.reportWorkerFailure(value, { handler: `corpus-thrown-${index}`, ...worker.details }),
      ),
      reporter.reportJobFailure(scheduler.error, {
        job: 'corpus-job',
        slot: '2026-11-22',
        lookalikes: [...REDACTION_LOOKALIKES],
        ...scheduler.details,
      }),
    ]);
    await reporter.flush();
    expect(reports.map((report) => report.status)).toEqual(reports.map(() => 'sent'));

    const expected = 1 + reports.length;
    const emails = await waitForEmails(admin, expected);
    expect(emails).toHaveLength(expected);
    const all = emails.map(mailText).join('\n');

    expect(leakedItems(all)).toEqual([]);
    expect(REDACTION_CORPUS.length).toBeGreaterThanOrEqual(80);

    const logs = logLines.join('\n');
    expect(logs).toContain('unhandled exception');
    expect(leakedItems(logs)).toEqual([]);

    const byScope = (scope: string) => emails.find((email) => email.subject.includes(scope));
    const httpMail = mailText(byScope('corpus http')!);
    for (const part of [
      'Path:       /corpus/http?corpus=http&key=[REDACTED]',
      'x-auth: [REDACTED]',
      'Properties:',
      'Caused by',
      'Aggregated error 1 of',
    ]) {
      expect(httpMail).toContain(part);
    }
    const jobMail = mailText(byScope('corpus scheduler')!);
    expect(
      REDACTION_LOOKALIKES.filter((text) => !jobMail.includes(JSON.stringify(text).slice(1, -1))),
    ).toEqual([]);
  });
});
