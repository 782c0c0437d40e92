import { setTimeout as sleep } from 'node:timers/promises';
import { waitFor } from '@once/testing';
import type { QueryRunner } from 'typeorm';
import { randomUUID } from 'node:crypto';
import { MailLedgerService, MailService } from '../src';
import { MailLedgerRepository } from '../src/lib/ledger/mail-ledger.repository';
import {
  ADDRESS_LOCK_CLASS,
  createMailTestApp,
  holdAddressLock as holdLock,
  emailsTo,
  emulatorSesConfig,
  type MailTestApp,
  uniqueAddress,
  uniqueKey,
} from './support/mail-e2e.harness';

/** The SES deadline; the stamp before the call may take half of it. */
const DEADLINE_MS = 2_000;
const STAMP_BUDGET_MS = DEADLINE_MS / 2;

describe('the stamp before an SES call is bounded as a whole, not per lock', () => {
  let t: MailTestApp;
  let mail: MailService;
  let ledger: MailLedgerService;
  const holders: QueryRunner[] = [];

  beforeAll(async () => {
    t = await createMailTestApp({ ses: emulatorSesConfig(undefined, DEADLINE_MS) });
    mail = t.app.get(MailService);
    ledger = t.app.get(MailLedgerService);
  });

  afterAll(async () => {
    for (const holder of holders) if (!holder.isReleased) await holder.release();
    await t.close();
  });

  const holdAddressLock = (key: string) => holdLock(t.dataSource, key, holders);

  /** Holds the address locks of `addresses` in the order a stamp takes them (lock-id order). */
  async function holdInLockOrder(addresses: string[]): Promise<QueryRunner[]> {
    const ordered: Array<{ key: string }> = await t.dataSource.query(
      `SELECT key FROM unnest($1::text[]) AS key ORDER BY hashtext(key)`,
      [addresses],
    );
    return Promise.all(ordered.map(({ key }) => holdAddressLock(key)));
  }

  const waitingForAddressLock = async () => {
    const rows: Array<{ n: number }> = await t.dataSource.query(
      `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND classid = $1::oid`,
      [ADDRESS_LOCK_CLASS],
    );
    return rows[0].n > 0 ? true : undefined;
  };

  it('two recipient locks released one after the other, each within a lock timeout: SES is not called, the send fails retryable, the row is not stamped', async () => {
    const [first, second] = [uniqueAddress('a'), uniqueAddress('b')];
    // The stamp takes the locks in lock-id order: hold the one it takes first and the other one.
    const [lockedFirst, lockedSecond] = await holdInLockOrder([first, second]);
    const key = uniqueKey('stamp-budget');

    const sending = mail.send({ idempotencyKey: key, to: [first, second], subject: 'Digest', text: 'Hi.' });
    await waitFor('the stamp to wait for the first address lock', waitingForAddressLock, { intervalMs: 20 });
    // Each wait stays below the per-lock timeout (the budget), together they exceed the budget.
    await sleep(STAMP_BUDGET_MS * 0.7);
    await lockedFirst.commitTransaction();
    await sleep(STAMP_BUDGET_MS * 0.6);
    await lockedSecond.commitTransaction();
    const result = await sending;

    expect(result).toMatchObject({
      status: 'failed',
      retryable: true,
      error: expect.stringContaining('stamp'),
    });
    const entry = await ledger.get(key);
    expect(entry).toMatchObject({ status: 'failed', retryable: true });
    expect(entry?.sesCalledAt).toBeUndefined();
    // SES never saw it: a send to other recipients right after arrives, this one does not.
    const probe = uniqueAddress('probe');
    await mail.send({ idempotencyKey: uniqueKey('probe'), to: probe, subject: 'Probe', text: 'Hi.' });
    await waitFor('the probe email', async () => ((await emailsTo(probe)).length > 0 ? true : undefined));
    expect(await emailsTo(first)).toHaveLength(0);
    expect(await emailsTo(second)).toHaveLength(0);
  });

  it('the stamp itself gives up once its budget is spent across lock waits, stamping nothing', async () => {
    const repository = t.app.get(MailLedgerRepository);
    const [first, second] = [uniqueAddress('c'), uniqueAddress('d')];
    const [lockedFirst, lockedSecond] = await holdInLockOrder([first, second]);
    const key = uniqueKey('stamp-alone');
    const claimToken = randomUUID();
    await repository.claim({
      idempotencyKey: key,
      status: 'pending',
      recipients: [first, second],
      message: { to: [first, second], from: 'digest@once.example', subject: 'S', text: 'T', headers: [] },
      contentHash: 'h',
      claimToken,
      suppressed: [],
    });
    const startedAt = Date.now();
    const stamping = repository.markSesCall(key, claimToken, [first, second]).then(
      (stamp) => ({ stamp, ms: Date.now() - startedAt }),
      (error: Error) => ({ error, ms: Date.now() - startedAt }),
    );
    await waitFor('the stamp to wait for the first address lock', waitingForAddressLock, { intervalMs: 20 });
    await sleep(STAMP_BUDGET_MS * 0.7);
    await lockedFirst.commitTransaction();
    const outcome = await stamping;
    await lockedSecond.commitTransaction();
    // Each wait alone would fit in the budget; the second one is cut at what is left of it.
    expect(outcome).toMatchObject({ error: expect.any(Error) });
    expect(outcome.ms).toBeLessThan(STAMP_BUDGET_MS + 400);
    expect((await ledger.get(key))?.sesCalledAt).toBeUndefined();
    expect((await ledger.get(key))?.status).toBe('pending');
  });

  it('a stamped attempt that then does not call SES (too little deadline left) is recorded failed with its stamp cleared', async () => {
    const repository = t.app.get(MailLedgerRepository);
    const key = uniqueKey('not-called');
    const to = uniqueAddress();
    const claimToken = randomUUID();
    const message = { to: [to], from: 'digest@once.example', subject: 'S', text: 'T', headers: [] };
    await repository.claim({
      idempotencyKey: key,
      status: 'pending',
      recipients: [to],
      message,
      contentHash: 'h',
      claimToken,
      suppressed: [],
    });
    expect(await repository.markSesCall(key, claimToken, [to])).toMatchObject({ status: 'stamped' });
    expect((await ledger.get(key))?.sesCalledAt).toBeInstanceOf(Date);
    const error =
      'the ledger stamp left 10 ms of the 2000 ms SES deadline (less than half); SES was not called';
    expect(
      await repository.complete(key, claimToken, {
        status: 'failed',
        error,
        retryable: true,
        sesNotCalled: true,
      }),
    ).toBe(true);
    const entry = await ledger.get(key);
    expect(entry).toMatchObject({ status: 'failed', retryable: true, error });
    expect(entry?.sesCalledAt).toBeUndefined();
    expect(entry?.history.at(-1)).toMatchObject({ event: 'failed', sesCalled: false });
  });
});
