import { SESv2Client } from '@aws-sdk/client-sesv2';
import { waitFor } from '@once/testing';
import {
  MailLedgerService,
  MailResendNotAllowedError,
  MailService,
  type MailModuleOptions,
  type MailSendResult,
  type SendMailInput,
} from '../src';
import {
  createMailTestApp,
  emailsTo,
  emulatorSesClient,
  emulatorSesConfig,
  env,
  type MailTestApp,
  uniqueAddress,
  uniqueKey,
  waitForEmails,
} from './support/mail-e2e.harness';
import { type SesFaultAction, SesFaultProxy } from './support/ses-fault.proxy';

/** The SES deadline under test, the stale window after it and how long the proxy holds an answer. */
const DEADLINE_MS = 1_500;
const STALE_MS = 6_000;
const HOLD_MS = 15_000;
/** Generous: the machine is small and shared. Still far below HOLD_MS, which is what a missing deadline costs. */
const SLACK_MS = 4_000;

function digest(to: string, key: string): SendMailInput {
  return { idempotencyKey: key, to, subject: 'Your daily digest', text: 'Three new things happened.' };
}

describe('SES calls have a hard deadline (proxy holding SES answers)', () => {
  let proxy: SesFaultProxy;
  let endpoint: string;
  /** Per key: the action for its nth SendEmail (default: pass). */
  const plans = new Map<string, (nth: number) => SesFaultAction>();

  beforeAll(async () => {
    proxy = new SesFaultProxy(env('SES_ENDPOINT'), ({ key, nth }) =>
      key && plans.has(key) ? plans.get(key)!(nth) : { kind: 'pass' },
    );
    endpoint = await proxy.listen();
  });

  afterAll(() => proxy.close());

  const variants: Array<[string, () => { ses: MailModuleOptions['ses']; client?: SESv2Client }]> = [
    ['a client the module builds', () => ({ ses: emulatorSesConfig(endpoint, DEADLINE_MS) })],
    [
      'a user-supplied SESv2Client with no timeout of its own',
      () => {
        const client = emulatorSesClient(endpoint);
        return { ses: { client, requestTimeoutMs: DEADLINE_MS }, client };
      },
    ],
  ];

  describe.each(variants)('with %s', (_label, sesFor) => {
    let t: MailTestApp;
    let client: SESv2Client | undefined;
    let mail: MailService;
    let ledger: MailLedgerService;

    beforeAll(async () => {
      const { ses, client: own } = sesFor();
      client = own;
      t = await createMailTestApp({ ses, staleAfterMs: STALE_MS });
      mail = t.app.get(MailService);
      ledger = t.app.get(MailLedgerService);
    });

    afterAll(async () => {
      await t.close();
      client?.destroy();
    });

    it.each(['headers', 'body'] as const)(
      'returns unknown within the deadline when SES holds its answer (held before the %s)',
      async (phase) => {
        const to = uniqueAddress();
        const key = uniqueKey('held');
        plans.set(key, () => ({ kind: 'hold', ms: HOLD_MS, phase }));

        const started = Date.now();
        const result = await mail.send(digest(to, key));
        const elapsed = Date.now() - started;

        expect(result).toMatchObject({ status: 'unknown', ledgerStatus: 'unknown' });
        expect(elapsed).toBeGreaterThanOrEqual(DEADLINE_MS - 50);
        expect(elapsed).toBeLessThan(DEADLINE_MS + SLACK_MS);
        const [exchange, ...others] = proxy.sends(key);
        expect(others).toHaveLength(0);
        // The request reached the emulator, and the SDK's connection was closed by the time the
        // send returned: the call is over on our side, not still waiting in the background.
        expect(exchange).toMatchObject({ forwarded: true });
        expect(exchange.closedAt).toBeDefined();
        expect(await waitForEmails(to, 1)).toHaveLength(1);
        expect((await ledger.get(key))?.status).toBe('unknown');
      },
    );

    it('refuses a resend while the call may be open and allows it only after the stale window; never two calls at once', async () => {
      const to = uniqueAddress();
      const key = uniqueKey('held-resend');
      plans.set(key, (nth) => (nth === 1 ? { kind: 'hold', ms: HOLD_MS } : { kind: 'pass' }));

      let firstDoneAt: number | undefined;
      const sending = mail.send(digest(to, key)).then((result) => {
        firstDoneAt = Date.now();
        return result;
      });
      await proxy.next((exchange) => exchange.key === key);

      // The call is open: the row is pending, a resend is refused, a duplicate send does not call SES.
      const open = await ledger.get(key);
      expect(open?.status).toBe('pending');
      // The entry maps a null column to undefined: a Date is the only proof the call was stamped.
      expect(open?.sesCalledAt).toBeInstanceOf(Date);
      await expect(ledger.resend(key, { actor: 'test' })).rejects.toThrow(MailResendNotAllowedError);
      expect(await mail.send(digest(to, key))).toMatchObject({ status: 'duplicate', inFlight: true });

      // An operator pressing "resend" over and over, the way the admin route would be used.
      const refusedWhileUnknown: string[] = [];
      const resent = await waitFor<MailSendResult>(
        'a resend to be allowed',
        async () => {
          try {
            return await ledger.resend(key, { actor: 'test' });
          } catch (error) {
            if (!(error instanceof MailResendNotAllowedError)) throw error;
            if (firstDoneAt !== undefined) refusedWhileUnknown.push(error.currentStatus);
            return undefined;
          }
        },
        { timeoutMs: STALE_MS + HOLD_MS, intervalMs: 100 },
      );
      const first = await sending;

      expect(first).toMatchObject({ status: 'unknown', ledgerStatus: 'unknown' });
      expect(resent).toMatchObject({ status: 'sent', attempts: 2 });
      // Between the recorded `unknown` and the end of the stale window resends were refused too.
      expect(refusedWhileUnknown.length).toBeGreaterThan(0);
      // The resend was accepted only once the stale window after the first SES call had passed (DB clock).
      const entry = await ledger.get(key);
      const resendEvent = entry?.history.find((event) => event.event === 'resend');
      expect(resendEvent).toBeDefined();
      expect(
        new Date(String(resendEvent?.at)).getTime() - new Date(open!.sesCalledAt!).getTime(),
      ).toBeGreaterThanOrEqual(STALE_MS);
      // Never two SES calls for the key open at once, and no late `sent` from the first attempt.
      expect(proxy.sends(key)).toHaveLength(2);
      expect(proxy.maxOverlap(key)).toBe(1);
      expect(entry?.history.map((event) => event.event)).not.toContain('late-sent');
      // Two copies, both deliberate: the first (SES had it, nobody heard) and the recorded resend.
      expect(await waitForEmails(to, 2)).toHaveLength(2);
    });

    it('sends no second copy while a held call is open, however often the key is sent', async () => {
      const to = uniqueAddress();
      const key = uniqueKey('held-dup');
      plans.set(key, () => ({ kind: 'hold', ms: HOLD_MS }));

      let done = false;
      const sending = mail.send(digest(to, key)).finally(() => (done = true));
      const exchange = await proxy.next((candidate) => candidate.key === key);
      const duplicates = await Promise.all(Array.from({ length: 10 }, () => mail.send(digest(to, key))));
      // Reads of the row while the call runs: it may read `unknown` only once the call is closed
      // (checked after one turn of the event loop, so the proxy has seen a close that already happened).
      const reads: Array<{ status?: string; callClosed: boolean }> = [];
      const read = async () => {
        const status = (await ledger.get(key))?.status;
        await new Promise((resolve) => setImmediate(resolve));
        reads.push({ status, callClosed: exchange.closedAt !== undefined });
      };
      while (!done) await read();
      const first = await sending;
      await read();
      expect(reads.some((candidate) => candidate.status === 'pending')).toBe(true);
      expect(reads.filter((candidate) => candidate.status !== 'pending')).toEqual(
        reads
          .filter((candidate) => candidate.status !== 'pending')
          .map(() => ({ status: 'unknown', callClosed: true })),
      );
      expect(reads.at(-1)).toEqual({ status: 'unknown', callClosed: true });

      expect(duplicates.every((result) => result.status === 'duplicate')).toBe(true);
      expect(first.status).toBe('unknown');
      expect(proxy.sends(key)).toHaveLength(1);
      expect(await waitForEmails(to, 1)).toHaveLength(1);
      // Let the held answer go: still one copy, and the row stays `unknown`.
      proxy.releaseAll();
      await waitFor('the held exchange to close', () => (proxy.sends(key)[0].closedAt ? true : undefined));
      expect(await emailsTo(to)).toHaveLength(1);
      expect((await ledger.get(key))?.status).toBe('unknown');
    });
  });
});
