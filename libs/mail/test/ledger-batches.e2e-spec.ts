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
 * Concurrent sends (the ten of a receive batch) share their ledger statements: one
 * claim-and-stamp for the first sends resumed together, and one outcome `UPDATE` for the outcomes
 * recorded within a few milliseconds. Each send still gets the answer it would get alone. Real
 * Postgres, Redis and the SES emulator.
 */
describe('mail ledger: concurrent sends share their statements', () => {
  let t: MailTestApp;
  let mail: MailService;
  let ledger: MailLedgerService;
  let repository: MailLedgerRepository;
  const holders: QueryRunner[] = [];
  /** The SQL of every query the app ran since the last `statements.length = 0`. */
  const statements: string[] = [];

  beforeAll(async () => {
    t = await createMailTestApp({ ses: emulatorSesConfig(undefined, 2_000) });
    mail = t.app.get(MailService);
    ledger = t.app.get(MailLedgerService);
    repository = t.app.get(MailLedgerRepository);
    const create = t.dataSource.createQueryRunner.bind(t.dataSource);
    jest.spyOn(t.dataSource, 'createQueryRunner').mockImplementation((...args) => {
      const runner = create(...args);
      const query = runner.query.bind(runner);
      runner.query = ((sql: string, ...rest: unknown[]) => {
        statements.push(sql);
        return (query as (...a: unknown[]) => Promise<unknown>)(sql, ...rest);
      }) as typeof runner.query;
      return runner;
    });
  });

  afterAll(async () => {
    for (const holder of holders) if (!holder.isReleased) await holder.release();
    jest.restoreAllMocks();
    await t.close();
  });

  const count = (pattern: RegExp) => statements.filter((sql) => pattern.test(sql)).length;
  const send = (key: string, to: string | string[]) =>
    mail.send({ idempotencyKey: key, to, subject: 'S', text: 'T' }, { likelyNew: true });

  it('ten first sends resumed together: one claim-and-stamp statement, fewer outcome statements than sends, each sent once', async () => {
    const sends = Array.from({ length: 10 }, (_, i) => ({
      key: uniqueKey(`batch-${i}`),
      to: uniqueAddress(),
    }));
    statements.length = 0;
    const results = await Promise.all(sends.map(({ key, to }) => send(key, to)));
    expect(results.map((result) => result.status)).toEqual(new Array(10).fill('sent'));
    expect(count(/mail_claim_and_stamp_many/)).toBe(1);
    expect(count(/\bmail_claim_and_stamp\(/)).toBe(0);
    const outcomes = count(/jsonb_to_recordset/);
    expect(outcomes).toBeGreaterThanOrEqual(1);
    expect(outcomes).toBeLessThan(10);
    for (const { key, to } of sends) {
      expect(await emailsTo(to)).toHaveLength(1);
      const entry = await ledger.get(key);
      expect(entry).toMatchObject({ status: 'sent', attempts: 1 });
      expect(entry?.history.map((event) => event.event)).toEqual(['pending', 'sent']);
    }
  });

  it('a batch mixing a new key, a key used before, one key twice, an all-suppressed and a partly suppressed send: each gets its own answer', async () => {
    const suppressions = t.app.get(MailSuppressionService);
    const blocked = uniqueAddress('blocked');
    await suppressions.suppress(blocked, 'manual');
    const used = { key: uniqueKey('used'), to: uniqueAddress('used') };
    const first = await mail.send({ idempotencyKey: used.key, to: used.to, subject: 'S', text: 'T' });
    const fresh = { key: uniqueKey('fresh'), to: uniqueAddress('fresh') };
    const twice = { key: uniqueKey('twice'), to: uniqueAddress('twice') };
    const open = uniqueAddress('open');
    const [allSuppressed, partly] = [uniqueKey('all-suppressed'), uniqueKey('partly')];
    statements.length = 0;
    const [freshResult, usedResult, twiceA, twiceB, allResult, partlyResult] = await Promise.all([
      send(fresh.key, fresh.to),
      send(used.key, used.to),
      send(twice.key, twice.to),
      send(twice.key, twice.to),
      send(allSuppressed, blocked),
      send(partly, [blocked, open]),
    ]);
    expect(count(/mail_claim_and_stamp_many/)).toBe(1);
    expect(freshResult).toMatchObject({ status: 'sent', ledgerStatus: 'sent' });
    expect(usedResult).toMatchObject({
      status: 'duplicate',
      ledgerStatus: 'sent',
      sesMessageId: first.sesMessageId,
    });
    const pair = [twiceA, twiceB] as MailSendResult[];
    expect(pair.filter((result) => result.status === 'sent')).toHaveLength(1);
    expect(pair.filter((result) => result.status === 'duplicate')).toHaveLength(1);
    expect(allResult).toMatchObject({ status: 'suppressed', suppressedRecipients: [blocked] });
    expect(partlyResult).toMatchObject({ status: 'sent', suppressedRecipients: [blocked] });
    expect(await emailsTo(fresh.to)).toHaveLength(1);
    expect(await emailsTo(used.to)).toHaveLength(1);
    expect(await emailsTo(twice.to)).toHaveLength(1);
    expect(await emailsTo(blocked)).toHaveLength(0);
    expect(await emailsTo(open)).toHaveLength(1);
    expect(await ledger.get(allSuppressed)).toMatchObject({ status: 'suppressed' });
  });

  it('a suppression holding one recipient’s lock holds back neither the other sends of the batch nor itself: that send waits for it alone', async () => {
    const locked = uniqueAddress('locked');
    const holder = await holdAddressLock(t.dataSource, locked, holders);
    const others = Array.from({ length: 4 }, (_, i) => ({
      key: uniqueKey(`free-${i}`),
      to: uniqueAddress(),
    }));
    const lockedKey = uniqueKey('locked');
    statements.length = 0;
    const lockedSend = send(lockedKey, locked);
    let lockedDone = false;
    void lockedSend.finally(() => (lockedDone = true));
    const free = await Promise.all(others.map(({ key, to }) => send(key, to)));
    // The four were sent while the lock was still held: the locked one did not delay them.
    expect(free.map((result) => result.status)).toEqual(['sent', 'sent', 'sent', 'sent']);
    expect(lockedDone).toBe(false);
    await holder.commitTransaction();
    expect(await lockedSend).toMatchObject({ status: 'sent', ledgerStatus: 'sent', attempts: 1 });
    // The four went through the shared statement, the locked one through the one-send function.
    expect(count(/mail_claim_and_stamp_many/)).toBe(1);
    expect(count(/\bmail_claim_and_stamp\(/)).toBe(1);
    expect(count(/mail_stamp_ses_call/)).toBe(0);
    expect(await emailsTo(locked)).toHaveLength(1);
    for (const { to } of others) expect(await emailsTo(to)).toHaveLength(1);
  });

  /** A pending row of its own, claimed as the default path does. */
  const pendingRow = async (label: string) => {
    const key = uniqueKey(label);
    const token = (
      await repository.claim({
        idempotencyKey: key,
        status: 'pending',
        recipients: [uniqueAddress()],
        message: { to: ['x@example.com'], from: 'from@example.com', subject: 'S', text: 'T', headers: [] },
        contentHash: 'h',
        claimToken: crypto.randomUUID(),
        suppressed: [],
      })
    ).row.claim_token;
    return { key, token };
  };

  it('an outcome the database refuses fails alone: the others of its statement are recorded', async () => {
    const rows = await Promise.all([pendingRow('o-1'), pendingRow('o-2'), pendingRow('o-3')]);
    const [a, b, c] = rows as [(typeof rows)[0], (typeof rows)[0], (typeof rows)[0]];
    statements.length = 0;
    const answers = await Promise.allSettled([
      repository.complete(a.key, a.token, { status: 'sent', sesMessageId: 'ses-a' }),
      // Postgres text cannot hold NUL: this outcome alone is refused.
      repository.complete(b.key, b.token, { status: 'unknown', error: 'bad \u0000 byte' }),
      repository.complete(c.key, c.token, { status: 'failed', error: 'MessageRejected', retryable: false }),
    ]);
    expect(answers.map((answer) => answer.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(answers[0]).toMatchObject({ value: true });
    expect(answers[2]).toMatchObject({ value: true });
    // One shared statement first, then one each.
    expect(count(/jsonb_to_recordset/)).toBe(4);
    expect(await ledger.get(a.key)).toMatchObject({ status: 'sent', sesMessageId: 'ses-a' });
    expect((await repository.find(b.key))?.status).toBe('pending');
    expect(await ledger.get(c.key)).toMatchObject({ status: 'failed', retryable: false });
  });

  it('two outcomes of one attempt in one window land in order: the second only in the history, as late', async () => {
    const { key, token } = await pendingRow('o-twice');
    const [first, second] = await Promise.all([
      repository.complete(key, token, { status: 'unknown', error: 'RequestTimeout' }),
      repository.complete(key, token, { status: 'sent', sesMessageId: 'ses-late' }),
    ]);
    expect([first, second]).toEqual([true, false]);
    const entry = await ledger.get(key);
    expect(entry?.status).toBe('unknown');
    expect(entry?.history.map((event) => event.event)).toEqual(['pending', 'unknown', 'late-sent']);
  });

  it('an outcome for a row another attempt owns is refused and kept in its history', async () => {
    const { key } = await pendingRow('o-foreign');
    const [answer] = await Promise.all([
      repository.complete(key, crypto.randomUUID(), { status: 'sent', sesMessageId: 'ses-foreign' }),
    ]);
    expect(answer).toBe(false);
    const row = await repository.find(key);
    expect(row?.status).toBe('pending');
    expect(row?.history.map((event) => event.event)).toEqual(['pending', 'late-sent']);
  });
});
