import { randomUUID } from 'node:crypto';
import { SESv2Client } from '@aws-sdk/client-sesv2';
import { SesMailbox, waitFor } from '@once/testing';
import fc from 'fast-check';
import { MailLedgerService, type MailSendResult, MailService, SesFeedbackService } from '../src';
import { createMailAppOnRedis, type OwnRedisMailApp } from './support/b-mail.app';
import { env } from './support/mail-e2e.harness';

/** Emails whose recipients include `address`, compared as mailboxes (case-insensitively). */
async function emailsTo(address: string) {
  const emails = await new SesMailbox(env('SES_ENDPOINT')).all();
  return emails.filter((email) =>
    email.destination.to.some((to) => to.toLowerCase() === address.toLowerCase()),
  );
}

const seed = Number(process.env.FC_SEED ?? Math.floor(Math.random() * 2 ** 31));
console.log(`in-flight-bounce.e2e: fast-check seed ${seed} (rerun with FC_SEED=${seed})`);

/** A gate a test closes to hold a call at a known point, and opens again. */
class Gate {
  private waiting: Array<() => void> = [];
  private closed = false;
  reached = 0;
  close(): void {
    this.closed = true;
    this.reached = 0;
  }
  open(): void {
    this.closed = false;
    for (const release of this.waiting.splice(0)) release();
  }
  async pass(): Promise<void> {
    if (!this.closed) return;
    this.reached++;
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }
}

type Phase = 'before-send' | 'waiting-for-slot' | 'in-ses-call' | 'after-sent' | 'race';

describe('a hard bounce or complaint while a send to that address is in flight', () => {
  let t: OwnRedisMailApp;
  let mail: MailService;
  let feedback: SesFeedbackService;
  const redisGate = new Gate();
  const sesGate = new Gate();

  beforeAll(async () => {
    const client = new SESv2Client({
      region: env('AWS_REGION'),
      endpoint: env('SES_ENDPOINT'),
      credentials: { accessKeyId: env('AWS_ACCESS_KEY_ID'), secretAccessKey: env('AWS_SECRET_ACCESS_KEY') },
      maxAttempts: 1,
    });
    // Holds SendEmail after the ledger stamped the call: the SES call is in flight.
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'SendEmailCommand') await sesGate.pass();
        return next(args);
      },
      { step: 'initialize', name: 'testSesGate' },
    );
    t = await createMailAppOnRedis(env('REDIS_URL'), {
      ses: { client },
      rateLimit: { maxSendRate: 500, burst: 50, perRecipient: false },
    });
    // Holds the limiter's reservation: the row is pending and SES has not been called.
    const evaluate = t.redis.eval.bind(t.redis) as (...args: unknown[]) => Promise<unknown>;
    (t.redis as unknown as { eval: (...args: unknown[]) => Promise<unknown> }).eval = async (...args) => {
      await redisGate.pass();
      return evaluate(...args);
    };
    mail = t.app.get(MailService);
    feedback = t.app.get(SesFeedbackService);
  });

  afterAll(async () => {
    redisGate.open();
    sesGate.open();
    await t?.close();
  });

  const notify = (kind: 'Bounce' | 'Complaint', emailAddress: string, sesMessageId = `ses-${randomUUID()}`) =>
    feedback.process({
      MessageId: randomUUID(),
      TopicArn: 'arn:aws:sns:us-east-1:123456789012:ses-feedback',
      Type: 'Notification',
      Message: JSON.stringify(
        kind === 'Bounce'
          ? {
              notificationType: 'Bounce',
              mail: { messageId: sesMessageId },
              bounce: {
                bounceType: 'Permanent',
                bounceSubType: 'General',
                bouncedRecipients: [{ emailAddress }],
              },
            }
          : {
              notificationType: 'Complaint',
              mail: { messageId: sesMessageId },
              complaint: { complainedRecipients: [{ emailAddress }], complaintFeedbackType: 'abuse' },
            },
      ),
    });

  const ledgerRow = async (key: string) =>
    (
      (await t.dataSource.query(
        'SELECT status, ses_called_at, history FROM mail_ledger WHERE idempotency_key = $1',
        [key],
      )) as Array<{ status: string; ses_called_at: Date | null; history: Array<{ event: string }> }>
    )[0];

  it('in flight: sent once; before the SES call: suppressed; after the feedback: suppressed (property)', async () => {
    const seen = new Set<Phase>();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<Phase>('before-send', 'waiting-for-slot', 'in-ses-call', 'after-sent', 'race'),
        fc.constantFrom<'Bounce' | 'Complaint'>('Bounce', 'Complaint'),
        fc.boolean(),
        fc.integer({ min: 0, max: 30 }),
        async (phase, kind, shout, raceDelayMs) => {
          seen.add(phase);
          const n = randomUUID().slice(0, 8);
          const sentTo = `b-${n}@xn--bcher-kva.example`;
          // SES reports the address as sent; the caller may spell it otherwise.
          const callerSpelling = shout ? `B-${n}@BÜCHER.example` : `b-${n}@bücher.example`;
          const key = `bounce:${n}`;
          const send = () => mail.send({ idempotencyKey: key, to: callerSpelling, subject: 'S', text: 'T' });

          let result: MailSendResult;
          let sendStartedAfterFeedback = false;
          if (phase === 'before-send') {
            await notify(kind, sentTo);
            sendStartedAfterFeedback = true;
            result = await send();
          } else if (phase === 'waiting-for-slot') {
            redisGate.close();
            const pending = send();
            await waitFor('the send to wait for its slot', () => (redisGate.reached > 0 ? true : undefined));
            await expect(ledgerRow(key)).resolves.toMatchObject({ status: 'pending', ses_called_at: null });
            await notify(kind, sentTo);
            redisGate.open();
            result = await pending;
          } else if (phase === 'in-ses-call') {
            sesGate.close();
            const pending = send();
            await waitFor('the SES call to start', () => (sesGate.reached > 0 ? true : undefined));
            await notify(kind, sentTo);
            sesGate.open();
            result = await pending;
          } else if (phase === 'after-sent') {
            result = await send();
            await notify(kind, sentTo);
          } else {
            let feedbackDoneAt = 0;
            const processing = (async () => {
              await new Promise((resolve) => setTimeout(resolve, raceDelayMs));
              await notify(kind, sentTo);
              feedbackDoneAt = performance.now();
            })();
            await new Promise((resolve) => setTimeout(resolve, 15));
            const startedAt = performance.now();
            result = await send();
            await processing;
            sendStartedAfterFeedback = feedbackDoneAt > 0 && feedbackDoneAt < startedAt;
          }

          const emails = await emailsTo(sentTo);
          const row = await ledgerRow(key);
          // Either SES got it exactly once and the row says sent, or it never did and the row says suppressed.
          expect(['sent', 'suppressed']).toContain(result.status);
          expect(row.status).toBe(result.status);
          expect(emails).toHaveLength(result.status === 'sent' ? 1 : 0);
          if (sendStartedAfterFeedback) expect(result.status).toBe('suppressed');
          if (phase === 'waiting-for-slot') {
            expect(result.status).toBe('suppressed');
            expect(row.history.map((event) => event.event)).toContain('suppressed-before-ses');
          }
          if (phase === 'in-ses-call' || phase === 'after-sent') expect(result.status).toBe('sent');

          // A message queued for that mailbox afterwards, however spelled, is suppressed.
          const next = await mail.send({
            idempotencyKey: `${key}:next`,
            to: callerSpelling.toUpperCase(),
            subject: 'S',
            text: 'T',
          });
          expect(next.status).toBe('suppressed');
          expect(await emailsTo(sentTo)).toHaveLength(emails.length);
          await expect(t.app.get(MailLedgerService).get(`${key}:next`)).resolves.toMatchObject({
            status: 'suppressed',
          });
        },
      ),
      { seed, numRuns: 30 },
    );
    expect(seen.size).toBeGreaterThanOrEqual(3);
  }, 120_000);

  it('the stamp before the SES call and the suppression queue on the row lock: whichever commits first decides (property)', async () => {
    const lockWaiters = async () =>
      Number(
        (
          (await t.dataSource.query(
            `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
          )) as Array<{ n: number }>
        )[0].n,
      );
    const orders = new Set<string>();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<'stamp-first' | 'suppression-first'>('stamp-first', 'suppression-first'),
        fc.constantFrom<'Bounce' | 'Complaint'>('Bounce', 'Complaint'),
        async (order, kind) => {
          orders.add(order);
          const n = randomUUID().slice(0, 8);
          const address = `lock-${n}@example.com`;
          const key = `lock:${n}`;
          redisGate.close();
          const sending = mail.send({ idempotencyKey: key, to: address, subject: 'S', text: 'T' });
          await waitFor('the send to wait for its slot', () => (redisGate.reached > 0 ? true : undefined));

          const holder = t.dataSource.createQueryRunner();
          await holder.connect();
          await holder.startTransaction();
          let feedbackDone: Promise<unknown> | undefined;
          try {
            await holder.query('SELECT 1 FROM mail_ledger WHERE idempotency_key = $1 FOR UPDATE', [key]);
            const queue = async (waiters: number) =>
              waitFor(`${waiters} session(s) waiting on the row lock`, async () =>
                (await lockWaiters()) >= waiters ? true : undefined,
              );
            if (order === 'stamp-first') {
              redisGate.open();
              await queue(1);
              feedbackDone = notify(kind, address);
              await queue(2);
            } else {
              feedbackDone = notify(kind, address);
              await queue(1);
              redisGate.open();
              await queue(2);
            }
          } finally {
            await holder.commitTransaction();
            await holder.release();
          }
          const result = await sending;
          await feedbackDone;

          const emails = await emailsTo(address);
          const row = await ledgerRow(key);
          if (order === 'stamp-first') {
            // Stamped before the suppression committed: the call was in flight and cannot be recalled.
            expect(result.status).toBe('sent');
            expect(emails).toHaveLength(1);
          } else {
            expect(result.status).toBe('suppressed');
            expect(emails).toHaveLength(0);
          }
          expect(row.status).toBe(result.status);
          const next = await mail.send({
            idempotencyKey: `${key}:next`,
            to: address,
            subject: 'S',
            text: 'T',
          });
          expect(next.status).toBe('suppressed');
        },
      ),
      { seed, numRuns: 10 },
    );
    expect(orders.size).toBe(2);
  }, 120_000);
});
