import { randomUUID } from 'node:crypto';
import { SESv2Client } from '@aws-sdk/client-sesv2';
import { SesMailbox, waitFor } from '@once/testing';
import fc from 'fast-check';
import {
  MailLedgerService,
  type MailSendResult,
  MailService,
  MailSuppressionService,
  SesFeedbackService,
} from '../src';
import { createMailTestApp, env, header, type MailTestApp } from './support/mail-e2e.harness';
import { SesFaultProxy } from './support/ses-fault.proxy';

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

/**
 * When the bounce commits, relative to the send: before it starts; while it waits for its rate-limit
 * slot (row pending, SES not called); while its SES call is in flight; while its first SES call is
 * in flight and then throttled (the retry stamps again); after it was sent; or racing it.
 */
type Phase = 'before-send' | 'waiting-for-slot' | 'in-ses-call' | 'throttled-call' | 'after-sent' | 'race';

describe('a hard bounce or complaint while a send to that address is in flight', () => {
  let t: MailTestApp;
  let mail: MailService;
  let feedback: SesFeedbackService;
  let proxy: SesFaultProxy;
  const redisGate = new Gate();
  const sesGate = new Gate();
  /** Keys whose first SendEmail the proxy answers with SES throttling (HTTP 429). */
  const throttleFirst = new Set<string>();
  /** When the limiter last granted a slot (the stamp before the SES call comes after it). */
  let slotGrantedAt = 0;

  beforeAll(async () => {
    proxy = new SesFaultProxy(env('SES_ENDPOINT'), ({ key, nth }) =>
      key && nth === 1 && throttleFirst.has(key) ? { kind: 'throttle', status: 429 } : { kind: 'pass' },
    );
    const client = new SESv2Client({
      region: env('AWS_REGION'),
      endpoint: await proxy.listen(),
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
    t = await createMailTestApp(
      {
        ses: { client },
        rateLimit: { maxSendRate: 500, burst: 50, perRecipient: false },
        throttleRetry: { maxAttempts: 4, baseDelayMs: 10, maxDelayMs: 50 },
      },
      {},
      { redisUrl: env('REDIS_URL') },
    );
    // Holds the limiter's reservation: the row is pending and SES has not been called.
    const evaluate = t.redis.eval.bind(t.redis) as (...args: unknown[]) => Promise<unknown>;
    (t.redis as unknown as { eval: (...args: unknown[]) => Promise<unknown> }).eval = async (...args) => {
      await redisGate.pass();
      const reply = await evaluate(...args);
      slotGrantedAt = performance.now();
      return reply;
    };
    mail = t.app.get(MailService);
    feedback = t.app.get(SesFeedbackService);
  });

  afterAll(async () => {
    redisGate.open();
    sesGate.open();
    await t?.close();
    await proxy?.close();
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

  it('a send to that address and others: the bounced address gets it only if its SES call was stamped before the bounce committed, the others exactly once (property)', async () => {
    const seen = new Set<Phase>();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<Phase>(
          'before-send',
          'waiting-for-slot',
          'in-ses-call',
          'throttled-call',
          'after-sent',
          'race',
        ),
        fc.constantFrom<'Bounce' | 'Complaint'>('Bounce', 'Complaint'),
        fc.boolean(),
        fc.integer({ min: 0, max: 30 }),
        fc.integer({ min: 0, max: 2 }),
        fc.boolean(),
        async (phase, kind, shout, raceDelayMs, otherCount, likelyNew) => {
          seen.add(phase);
          const n = randomUUID().slice(0, 8);
          const sentTo = `b-${n}@xn--bcher-kva.example`;
          // SES reports the address as sent; the caller may spell it otherwise.
          const callerSpelling = shout ? `B-${n}@BÜCHER.example` : `b-${n}@bücher.example`;
          const others = Array.from({ length: otherCount }, (_, i) =>
            shout ? `O${i}-${n}@Example.COM` : `o${i}-${n}@example.com`,
          );
          const key = `bounce:${n}`;
          const send = () =>
            mail.send(
              { idempotencyKey: key, to: [callerSpelling, ...others], subject: 'S', text: 'T' },
              { likelyNew },
            );

          let result: MailSendResult;
          /** The bounce committed before the send's stamp started, so SES must not get the address. */
          let committedBeforeStamp = false;
          if (phase === 'before-send') {
            await notify(kind, sentTo);
            committedBeforeStamp = true;
            result = await send();
          } else if (phase === 'waiting-for-slot') {
            redisGate.close();
            const pending = send();
            await waitFor('the send to wait for its slot', () => (redisGate.reached > 0 ? true : undefined));
            // likelyNew: the slot comes first, the row (inserted stamped) after it.
            if (likelyNew) await expect(ledgerRow(key)).resolves.toBeUndefined();
            else
              await expect(ledgerRow(key)).resolves.toMatchObject({ status: 'pending', ses_called_at: null });
            await notify(kind, sentTo);
            committedBeforeStamp = true;
            redisGate.open();
            result = await pending;
          } else if (phase === 'in-ses-call' || phase === 'throttled-call') {
            if (phase === 'throttled-call') throttleFirst.add(key);
            sesGate.close();
            const pending = send();
            await waitFor('the SES call to start', () => (sesGate.reached > 0 ? true : undefined));
            await notify(kind, sentTo);
            // A throttled call delivered nothing; the retry's stamp comes after the bounce committed.
            committedBeforeStamp = phase === 'throttled-call';
            sesGate.open();
            result = await pending;
          } else if (phase === 'after-sent') {
            result = await send();
            await notify(kind, sentTo);
          } else {
            let feedbackDoneAt = Number.POSITIVE_INFINITY;
            const processing = (async () => {
              await new Promise((resolve) => setTimeout(resolve, raceDelayMs));
              await notify(kind, sentTo);
              feedbackDoneAt = performance.now();
            })();
            await new Promise((resolve) => setTimeout(resolve, 15));
            slotGrantedAt = 0;
            result = await send();
            await processing;
            // Recorded after the commit and before the slot came back: the stamp started after it.
            committedBeforeStamp = slotGrantedAt > 0 && feedbackDoneAt < slotGrantedAt;
          }

          const emails = await emailsTo(sentTo);
          const row = await ledgerRow(key);
          const events = row.history.map((event) => event.event);
          expect(emails.length).toBeLessThanOrEqual(1);
          if (committedBeforeStamp) expect(emails).toHaveLength(0);
          if (phase === 'in-ses-call' || phase === 'after-sent') expect(emails).toHaveLength(1);
          for (const other of others) expect(await emailsTo(other)).toHaveLength(1);
          if (others.length === 0) {
            // Either SES got it exactly once and the row says sent, or it never did and the row says suppressed.
            expect(result.status).toBe(emails.length === 1 ? 'sent' : 'suppressed');
          } else {
            expect(result.status).toBe('sent');
            if (emails.length === 0) {
              expect(result.suppressedRecipients?.map((a) => a.toLowerCase())).toEqual([sentTo]);
              // Found at the claim (before-send, race; likelyNew: also while waiting for the slot),
              // the suppression goes into the row's first event; found at a later stamp, into its own.
              const atClaim =
                phase === 'before-send' || phase === 'race' || (likelyNew && phase === 'waiting-for-slot');
              if (!atClaim) expect(events).toContain('recipients-suppressed-before-ses');
            } else expect(result.suppressedRecipients).toBeUndefined();
          }
          expect(row.status).toBe(result.status);
          if (others.length === 0 && phase === 'throttled-call')
            expect(events).toContain('suppressed-before-ses');
          if (others.length === 0 && phase === 'waiting-for-slot')
            expect(events).toContain(likelyNew ? 'suppressed' : 'suppressed-before-ses');

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
      {
        seed,
        numRuns: 40,
        // Every phase at least once, alone and with other recipients, in both orders, whatever the seed.
        examples: (
          ['before-send', 'waiting-for-slot', 'in-ses-call', 'throttled-call', 'after-sent', 'race'] as const
        ).flatMap((phase) => [
          [phase, 'Bounce', false, 0, 0, false] as [Phase, 'Bounce', boolean, number, number, boolean],
          [phase, 'Bounce', true, 10, 2, true] as [Phase, 'Bounce', boolean, number, number, boolean],
        ]),
      },
    );
    expect(seen.size).toBe(6);
  }, 180_000);

  /** Sessions of this database waiting for a lock (row or advisory). */
  const lockWaiters = async () =>
    Number(
      (
        (await t.dataSource.query(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
        )) as Array<{ n: number }>
      )[0].n,
    );

  it('the stamp before the SES call and the suppression queue on the row lock: whichever commits first decides (property)', async () => {
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

  it('a send to several recipients and a suppression of one, each held open in its transaction: whichever commits first decides; the others get one copy (property)', async () => {
    const orders = new Set<string>();
    const suppressions = t.app.get(MailSuppressionService);
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<'stamp-first' | 'suppression-first'>('stamp-first', 'suppression-first'),
        fc.constantFrom<'Bounce' | 'Complaint'>('Bounce', 'Complaint'),
        fc.integer({ min: 1, max: 3 }),
        async (order, kind, otherCount) => {
          orders.add(order);
          const n = randomUUID().slice(0, 8);
          const address = `multi-${n}@example.com`;
          const others = Array.from({ length: otherCount }, (_, i) => `multi-${n}-o${i}@example.com`);
          const key = `multi:${n}`;
          redisGate.close();
          let settled = false;
          const sending = mail
            .send({ idempotencyKey: key, to: [...others, address], subject: 'S', text: 'T' })
            .finally(() => (settled = true));
          await waitFor('the send to wait for its slot', () => (redisGate.reached > 0 ? true : undefined));
          const stalled = (what: string, waiters: number, done: () => boolean) =>
            waitFor(what, async () => (done() || (await lockWaiters()) >= waiters ? true : undefined));

          const holder = t.dataSource.createQueryRunner();
          await holder.connect();
          await holder.startTransaction();
          let feedbackDone: Promise<unknown> = Promise.resolve();
          let feedbackFinished = false;
          let committedBeforeStamp: boolean;
          try {
            if (order === 'stamp-first') {
              // The stamp holds its place on the recipients, then waits for the row the holder locked.
              await holder.query('SELECT 1 FROM mail_ledger WHERE idempotency_key = $1 FOR UPDATE', [key]);
              redisGate.open();
              await stalled('the stamp to wait on the row lock', 1, () => settled);
              feedbackDone = notify(kind, address).finally(() => (feedbackFinished = true));
              await stalled('the suppression to wait for the stamp', 2, () => feedbackFinished);
              // A suppression that committed while the stamp waited must still keep the address out.
              committedBeforeStamp = feedbackFinished;
            } else {
              // The suppression is inserted and not committed when the send's stamp starts.
              await suppressions.suppress(address, 'manual', { test: 'held' }, holder.manager);
              redisGate.open();
              await stalled('the stamp to wait for the suppression', 1, () => settled);
              committedBeforeStamp = !settled;
            }
          } finally {
            await holder.commitTransaction();
            await holder.release();
          }
          const result = await sending;
          await feedbackDone;

          const emails = await emailsTo(address);
          for (const other of others) expect(await emailsTo(other)).toHaveLength(1);
          expect(result.status).toBe('sent');
          expect(emails).toHaveLength(committedBeforeStamp ? 0 : 1);
          // The order each side took: the stamp won the row lock, the suppression waited for it.
          expect(committedBeforeStamp).toBe(order === 'suppression-first');
          if (committedBeforeStamp) expect(result.suppressedRecipients).toEqual([address]);
          const next = await mail.send({
            idempotencyKey: `${key}:next`,
            to: [address, others[0]],
            subject: 'S',
            text: 'T',
          });
          expect(next).toMatchObject({ status: 'sent', suppressedRecipients: [address] });
          expect(await emailsTo(address)).toHaveLength(emails.length);
        },
      ),
      { seed, numRuns: 10 },
    );
    expect(orders.size).toBe(2);
  }, 120_000);

  it('concurrent sends to overlapping recipients and bounces of several of them, in any order: no deadlock, no lost send, no mail to an address suppressed before the send began (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.subarray([0, 1, 2, 3, 4, 5], { minLength: 1 }), { minLength: 5, maxLength: 25 }),
        fc.array(fc.subarray([0, 1, 2, 3, 4, 5], { minLength: 1, maxLength: 4 }), {
          minLength: 1,
          maxLength: 6,
        }),
        fc.array(fc.integer({ min: 0, max: 15 }), { minLength: 31, maxLength: 31 }),
        fc.array(fc.boolean(), { minLength: 25, maxLength: 25 }),
        async (sendSets, bounceSets, delays, likelyNew) => {
          const n = randomUUID().slice(0, 8);
          const pool = [0, 1, 2, 3, 4, 5].map((i) => `pool${i}-${n}@example.com`);
          const suppressedAt = new Map<string, number>();
          const pause = (i: number) =>
            new Promise((resolve) => setTimeout(resolve, delays[i % delays.length]));
          const bounces = bounceSets.map(async (set, i) => {
            await pause(i);
            // Several recipients in one notification, listed in the order SES chose.
            const bounced = [...set].reverse().map((index) => ({ emailAddress: pool[index] }));
            await feedback.process({
              MessageId: randomUUID(),
              TopicArn: 'arn:aws:sns:us-east-1:123456789012:ses-feedback',
              Type: 'Notification',
              Message: JSON.stringify({
                notificationType: 'Bounce',
                mail: { messageId: `ses-${randomUUID()}` },
                bounce: { bounceType: 'Permanent', bounceSubType: 'General', bouncedRecipients: bounced },
              }),
            });
            const at = performance.now();
            for (const index of set) if (!suppressedAt.has(pool[index])) suppressedAt.set(pool[index], at);
          });
          const sends = sendSets.map(async (set, i) => {
            await pause(i + bounceSets.length);
            const startedAt = performance.now();
            const key = `pool:${n}:${i}`;
            const result = await mail.send(
              { idempotencyKey: key, to: set.map((index) => pool[index]), subject: 'S', text: 'T' },
              { likelyNew: likelyNew[i] },
            );
            return { key, set, startedAt, result };
          });
          await Promise.all(bounces);
          const outcomes = await Promise.all(sends);

          const stored = (await new SesMailbox(env('SES_ENDPOINT')).all()).filter((email) =>
            email.destination.to.some((to) => to.endsWith(`-${n}@example.com`)),
          );
          for (const { key, set, startedAt, result } of outcomes) {
            expect(['sent', 'suppressed']).toContain(result.status);
            const copies = stored.filter((email) => header(email, 'X-Once-Key') === key);
            expect(copies).toHaveLength(result.status === 'sent' ? 1 : 0);
            const to = copies[0]?.destination.to ?? [];
            for (const index of set) {
              const address = pool[index];
              const suppressedBefore = (suppressedAt.get(address) ?? Number.POSITIVE_INFINITY) < startedAt;
              if (suppressedBefore) expect(to).not.toContain(address);
              // Every recipient either got this one copy or is reported left out.
              expect(to.includes(address) || (result.suppressedRecipients ?? []).includes(address)).toBe(
                true,
              );
            }
          }
        },
      ),
      { seed, numRuns: 8 },
    );
  }, 180_000);
});
