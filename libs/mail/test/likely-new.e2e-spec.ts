import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import type { QueryRunner } from 'typeorm';
import { MailLedgerService, MailService, MailSuppressionService, type MailSendResult } from '../src';
import { MailLedgerRepository } from '../src/lib/ledger/mail-ledger.repository';
import {
  createMailTestApp,
  emailsTo,
  emulatorSesConfig,
  holdAddressLock,
  type MailTestApp,
  uniqueAddress,
  uniqueKey,
} from './support/mail-e2e.harness';

/**
 * `likelyNew`: the rate slot first, then one statement that checks the suppression list and
 * inserts the row already stamped. Whatever the guess, the ledger's answers stay those of the
 * default path. Real Postgres, Redis and the SES emulator.
 */
describe('MailService.send with likelyNew: the two-commit first send', () => {
  let t: MailTestApp;
  let mail: MailService;
  let ledger: MailLedgerService;
  const holders: QueryRunner[] = [];

  beforeAll(async () => {
    t = await createMailTestApp({ ses: emulatorSesConfig(undefined, 2_000) });
    mail = t.app.get(MailService);
    ledger = t.app.get(MailLedgerService);
  });

  afterAll(async () => {
    for (const holder of holders) if (!holder.isReleased) await holder.release();
    await t.close();
  });

  const history = async (key: string) => (await ledger.get(key))?.history.map((event) => event.event);

  it('a new key: sent once, its row inserted stamped (one event before the outcome)', async () => {
    const key = uniqueKey('likely');
    const to = uniqueAddress();
    const result = await mail.send({ idempotencyKey: key, to, subject: 'S', text: 'T' }, { likelyNew: true });
    expect(result).toMatchObject({ status: 'sent', ledgerStatus: 'sent', attempts: 1 });
    expect(await emailsTo(to)).toHaveLength(1);
    const entry = await ledger.get(key);
    expect(entry?.sesCalledAt).toBeInstanceOf(Date);
    expect(entry?.history.map((event) => event.event)).toEqual(['pending', 'sent']);
  });

  it('a key used before (wrong guess): the duplicate answer, SES not called again', async () => {
    const key = uniqueKey('likely-dup');
    const to = uniqueAddress();
    const first = await mail.send({ idempotencyKey: key, to, subject: 'S', text: 'T' });
    const again = await mail.send({ idempotencyKey: key, to, subject: 'S', text: 'T' }, { likelyNew: true });
    expect(first.status).toBe('sent');
    expect(again).toMatchObject({
      status: 'duplicate',
      ledgerStatus: 'sent',
      sesMessageId: first.sesMessageId,
    });
    expect(await emailsTo(to)).toHaveLength(1);
  });

  it('every recipient suppressed: inserted suppressed, SES not called; some suppressed: sent to the rest', async () => {
    const suppressions = t.app.get(MailSuppressionService);
    const [blocked, open] = [uniqueAddress('blocked'), uniqueAddress('open')];
    await suppressions.suppress(blocked, 'manual');
    const all = await mail.send(
      { idempotencyKey: uniqueKey('likely-all'), to: blocked, subject: 'S', text: 'T' },
      { likelyNew: true },
    );
    expect(all).toMatchObject({
      status: 'suppressed',
      ledgerStatus: 'suppressed',
      suppressedRecipients: [blocked],
    });
    expect(await history(all.idempotencyKey)).toEqual(['suppressed']);
    const some = await mail.send(
      { idempotencyKey: uniqueKey('likely-some'), to: [blocked, open], subject: 'S', text: 'T' },
      { likelyNew: true },
    );
    expect(some).toMatchObject({ status: 'sent', suppressedRecipients: [blocked] });
    expect(await emailsTo(blocked)).toHaveLength(0);
    expect(await emailsTo(open)).toHaveLength(1);
    expect((await ledger.get(some.idempotencyKey))?.history[0]).toMatchObject({
      event: 'pending',
      suppressed: [blocked],
    });
  });

  it('the one statement cannot finish in its budget (a suppression holds the address lock): claimed, then stamped, the send fails retryable and SES is not called', async () => {
    const to = uniqueAddress('locked');
    const holder = await holdAddressLock(t.dataSource, to, holders);
    const key = uniqueKey('likely-locked');
    const result = await mail.send({ idempotencyKey: key, to, subject: 'S', text: 'T' }, { likelyNew: true });
    await holder.commitTransaction();
    expect(result).toMatchObject({
      status: 'failed',
      retryable: true,
      error: expect.stringContaining('stamp'),
    });
    expect(await ledger.get(key)).toMatchObject({ status: 'failed', retryable: true });
    expect((await ledger.get(key))?.sesCalledAt).toBeUndefined();
    expect(await emailsTo(to)).toHaveLength(0);
  });

  it('the one statement committed but its answer was lost: the row under its token is sent from there, once', async () => {
    const repository = t.app.get(MailLedgerRepository);
    const original = repository.claimAndStamp.bind(repository);
    const spy = jest.spyOn(repository, 'claimAndStamp').mockImplementationOnce(async (row) => {
      await original(row);
      throw new Error('Connection terminated unexpectedly');
    });
    try {
      const key = uniqueKey('likely-lost');
      const to = uniqueAddress('lost');
      const result = await mail.send(
        { idempotencyKey: key, to, subject: 'S', text: 'T' },
        { likelyNew: true },
      );
      expect(result).toMatchObject({ status: 'sent', ledgerStatus: 'sent', attempts: 1 });
      expect(await emailsTo(to)).toHaveLength(1);
      expect(await ledger.get(key)).toMatchObject({ status: 'sent', attempts: 1 });
    } finally {
      spy.mockRestore();
    }
  });

  it('property: concurrent sends of a few keys, each with or without likelyNew, reach SES once per key and agree with the ledger', async () => {
    const seed = Number(process.env.FC_SEED ?? Date.now() % 2 ** 31);
    console.log(`likely-new.e2e: fast-check seed ${seed} (rerun with FC_SEED=${seed})`);
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ key: fc.integer({ min: 0, max: 2 }), likelyNew: fc.boolean() }), {
          minLength: 1,
          maxLength: 8,
        }),
        async (calls) => {
          const n = randomUUID().slice(0, 8);
          const keyOf = (i: number) => `likely-prop:${n}:${i}`;
          const toOf = (i: number) => `likely-prop-${n}-${i}@example.com`;
          const results: MailSendResult[] = await Promise.all(
            calls.map(({ key, likelyNew }) =>
              mail.send(
                { idempotencyKey: keyOf(key), to: toOf(key), subject: 'S', text: 'T' },
                { likelyNew },
              ),
            ),
          );
          for (const key of new Set(calls.map((call) => call.key))) {
            const mine = results.filter((result) => result.idempotencyKey === keyOf(key));
            // One send per key won the row and sent; every other call got a duplicate answer.
            expect(mine.filter((result) => result.status === 'sent')).toHaveLength(1);
            expect(
              mine.filter((result) => result.status !== 'sent').every((r) => r.status === 'duplicate'),
            ).toBe(true);
            expect(await emailsTo(toOf(key))).toHaveLength(1);
            expect(await ledger.get(keyOf(key))).toMatchObject({ status: 'sent', attempts: 1 });
          }
        },
      ),
      { seed, numRuns: 25 },
    );
  });
});
