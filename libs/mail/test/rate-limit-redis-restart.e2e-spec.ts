import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { OwnRedisServer, SesMailbox, waitFor } from '@once/testing';
import { MailLedgerService, type MailSendResult, MailService } from '../src';
import {
  createMailTestApp,
  env,
  type MailTestApp,
  uniqueAddress,
  uniqueKey,
} from './support/mail-e2e.harness';

const RATE = 20;
const BURST = 2;
const INTERVAL_MS = 1000 / RATE;
const WINDOW_MS = 1000;
/** GCRA: in any window of W ms at most burst + ceil(W / interval) slots. */
const BOUND = BURST + Math.ceil(WINDOW_MS / INTERVAL_MS);
const WORKERS = 16;
const MAX_WAIT_MS = 2_000;
/** Slots a process can hold ahead of now: everything within maxWaitMs, plus the burst. */
const OUTSTANDING_BOUND = Math.ceil((MAX_WAIT_MS / 1000) * RATE) + BURST;

describe('rate limiter across a real Redis restart (own redis-server, kill -9)', () => {
  let server: OwnRedisServer;
  let t: MailTestApp;

  beforeAll(async () => {
    server = await OwnRedisServer.start();
    t = await createMailTestApp(
      {
        rateLimit: { maxSendRate: RATE, burst: BURST, perRecipient: false, maxWaitMs: MAX_WAIT_MS },
      },
      {},
      { redisUrl: server.url },
    );
  });

  afterAll(async () => {
    await t?.close();
    await server?.stop();
  });

  it('keeps the configured pace through a quick restart and a long outage, fails retryable meanwhile and resumes on its own', async () => {
    const { worst, sent, failed } = await stream([t], { longOutage: true });
    expect(failed).toBeGreaterThanOrEqual(2 * WORKERS);
    expect(sent).toBeGreaterThanOrEqual(120);
    // One process remembers the last global arrival time it was given: a restart adds nothing.
    expect(worst).toBeLessThanOrEqual(BOUND);
  }, 120_000);

  it('with two processes, a quick restart exceeds the pace by at most the slots the other process held', async () => {
    const prefix = `${env('REDIS_KEY_PREFIX')}mail-b2:${randomUUID().slice(0, 8)}:`;
    const options = {
      redisKeyPrefix: prefix,
      rateLimit: { maxSendRate: RATE, burst: BURST, perRecipient: false as const, maxWaitMs: MAX_WAIT_MS },
    };
    const a = await createMailTestApp(options, {}, { redisUrl: server.url });
    const b = await createMailTestApp(options, {}, { redisUrl: server.url });
    try {
      const { worst } = await stream([a, b], { longOutage: false });
      // After Redis lost its keys the first process to reserve restores its own floor; the other
      // process's reservations (at most maxWaitMs × rate + burst ahead) can overlap once per restart.
      expect(worst).toBeLessThanOrEqual(BOUND + OUTSTANDING_BOUND);
    } finally {
      await a.close();
      await b.close();
    }
  }, 120_000);

  /** Runs WORKERS sequential senders spread over `apps` through a kill -9 + restart (and optionally a long outage). */
  async function stream(apps: MailTestApp[], { longOutage }: { longOutage: boolean }) {
    const subject = `restart ${randomUUID().slice(0, 8)}`;
    const results: Array<{ key: string; result: MailSendResult }> = [];
    let stop = false;
    const worker = async (mail: MailService) => {
      while (!stop) {
        const key = uniqueKey('restart');
        const result = await mail.send({ idempotencyKey: key, to: uniqueAddress('rr'), subject, text: 'T' });
        results.push({ key, result });
        // A queue consumer's redelivery delay: an outage must not turn into a busy loop.
        if (result.status !== 'sent') await sleep(50);
      }
    };
    const sentSince = (index: number) =>
      results.slice(index).filter(({ result }) => result.status === 'sent').length;
    const failedSince = (index: number) =>
      results.slice(index).filter(({ result }) => result.status === 'failed').length;
    const workers = Array.from({ length: WORKERS }, (_, i) =>
      worker(apps[i % apps.length].app.get(MailService)),
    );
    try {
      await waitFor('a steady stream', () => (sentSince(0) >= 40 ? true : undefined), { timeoutMs: 30_000 });

      // 1. kill -9 and start again at once: sleeping sends hold slots up to maxWaitMs ahead.
      await server.kill();
      await server.restart();
      let mark = results.length;
      await waitFor(
        'sends to resume after a quick restart',
        () => (sentSince(mark) >= 40 ? true : undefined),
        {
          timeoutMs: 30_000,
        },
      );

      if (longOutage) {
        // 2. A longer outage: sends fail (retryable) until Redis is back, then resume without an app restart.
        await server.kill();
        mark = results.length;
        await waitFor(
          'sends to fail during the outage',
          () => (failedSince(mark) >= 2 * WORKERS ? true : undefined),
          {
            timeoutMs: 30_000,
          },
        );
        await server.restart();
        mark = results.length;
        await waitFor('sends to resume after the outage', () => (sentSince(mark) >= 40 ? true : undefined), {
          timeoutMs: 30_000,
        });
      }
    } finally {
      stop = true;
      await Promise.all(workers);
    }

    const sent = results.filter(({ result }) => result.status === 'sent');
    const failed = results.filter(({ result }) => result.status === 'failed');
    // Nothing but sent and retryable failures; never unknown, never silently dropped.
    expect(sent.length + failed.length).toBe(results.length);
    for (const { result } of failed) {
      expect(result).toMatchObject({
        retryable: true,
        error: expect.stringMatching(/rate limiter unavailable|rate limit/),
      });
    }
    const ledger = apps[0].app.get(MailLedgerService);
    for (const { key } of failed.slice(0, 20))
      await expect(ledger.get(key)).resolves.toMatchObject({ status: 'failed', retryable: true });

    // Every sent mail had a slot from the shared limiter; count the busiest window of slots.
    const slots = sent.map(({ result }) => result.slotAt!.getTime()).sort((x, y) => x - y);
    let worst = 0;
    for (let i = 0, j = 0; i < slots.length; i++) {
      while (slots[j] < slots[i] - WINDOW_MS + 1) j++;
      worst = Math.max(worst, i - j + 1);
    }
    console.log(
      `redis restart, ${apps.length} process(es): ${sent.length} sent, ${failed.length} failed retryable; busiest ${WINDOW_MS} ms window held ${worst} slots (bound ${BOUND}${apps.length > 1 ? ` + ${OUTSTANDING_BOUND}` : ''})`,
    );

    // SES got exactly the sent ones.
    const stored = (await new SesMailbox(env('SES_ENDPOINT')).all()).filter(
      (email) => email.subject === subject,
    );
    expect(stored).toHaveLength(sent.length);
    return { worst, sent: sent.length, failed: failed.length };
  }
});
