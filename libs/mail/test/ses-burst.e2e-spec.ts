import fc from 'fast-check';
import { MailLedgerService, MailService, type MailSendResult } from '../src';
import {
  createMailTestApp,
  emulatorSesConfig,
  env,
  type MailTestApp,
  type StoredEmail,
  uniqueAddress,
  uniqueKey,
} from './support/mail-e2e.harness';
import { type SesFaultAction, SesFaultProxy } from './support/ses-fault.proxy';
import { SesMailbox, waitFor } from '@once/testing';

/** SES calls per send when SES throttles (the dispatcher's in-process budget). */
const THROTTLE_ATTEMPTS = 4;
const RUNS = Number(process.env.FC_RUNS ?? 3);

/** SES's answers to one key's calls, in order (calls beyond the list pass). */
const answer = fc.oneof(
  { weight: 10, arbitrary: fc.constant<SesFaultAction>({ kind: 'pass' }) },
  { weight: 3, arbitrary: fc.constant<SesFaultAction>({ kind: 'throttle', status: 429 }) },
  { weight: 2, arbitrary: fc.constant<SesFaultAction>({ kind: 'throttle', status: 400 }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom<SesFaultAction>(
      { kind: 'fail', status: 500, forward: true },
      { kind: 'fail', status: 503, forward: true },
    ),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom<SesFaultAction>(
      { kind: 'fail', status: 500, forward: false },
      { kind: 'fail', status: 502, forward: false },
    ),
  },
);
const burst = fc.array(fc.array(answer, { minLength: 1, maxLength: THROTTLE_ATTEMPTS }), {
  minLength: 50,
  maxLength: 200,
});

/** What the ledger must say about a key whose SES calls get `plan`, and how many calls it makes. */
function expected(plan: SesFaultAction[]): { status: 'sent' | 'failed' | 'unknown'; calls: number } {
  for (let call = 1; call <= THROTTLE_ATTEMPTS; call++) {
    const action = plan[call - 1] ?? { kind: 'pass' };
    if (action.kind === 'pass' || action.kind === 'hold') return { status: 'sent', calls: call };
    if (action.kind === 'fail') return { status: 'unknown', calls: call };
  }
  return { status: 'failed', calls: THROTTLE_ATTEMPTS };
}

describe('a burst of sends while SES throttles and fails (proxy in front of the emulator)', () => {
  let t: MailTestApp;
  let proxy: SesFaultProxy;
  let mail: MailService;
  let ledger: MailLedgerService;
  const plans = new Map<string, SesFaultAction[]>();
  const mailbox = () => new SesMailbox(env('SES_ENDPOINT'));

  beforeAll(async () => {
    proxy = new SesFaultProxy(env('SES_ENDPOINT'), ({ key, nth }) =>
      key ? (plans.get(key)?.[nth - 1] ?? { kind: 'pass' }) : { kind: 'pass' },
    );
    const endpoint = await proxy.listen();
    t = await createMailTestApp({
      ses: emulatorSesConfig(endpoint, 10_000),
      rateLimit: { maxSendRate: 1_000, burst: 200, perRecipient: false },
      throttleRetry: { maxAttempts: THROTTLE_ATTEMPTS, baseDelayMs: 20, maxDelayMs: 200 },
    });
    mail = t.app.get(MailService);
    ledger = t.app.get(MailLedgerService);
  });

  afterAll(async () => {
    await t?.close();
    await proxy?.close();
  });

  it('ends every key in exactly one well-defined state, with no duplicate email and nothing left pending', async () => {
    const seed = Number(process.env.FC_SEED ?? Date.now() % 2 ** 31);
    console.log(`ses-burst: fast-check seed ${seed}, ${RUNS} runs (FC_SEED / FC_RUNS to change)`);
    const stats = { keys: 0, sent: 0, failed: 0, unknown: 0, throttledCalls: 0, fiveXx: 0 };

    await fc.assert(
      fc.asyncProperty(burst, async (burstPlans) => {
        const keys = burstPlans.map((plan) => {
          const key = uniqueKey('burst');
          plans.set(key, plan);
          return { key, to: uniqueAddress('burst'), plan };
        });

        const results = await Promise.all(
          keys.map(({ key, to }) =>
            mail.send({ idempotencyKey: key, to, subject: 'Burst', text: `for ${key}` }),
          ),
        );

        const emails = await waitFor<StoredEmail[]>(
          'the emulator to store every forwarded send',
          async () => {
            const all = await mailbox().all();
            const forwarded = keys.reduce(
              (sum, { key }) => sum + proxy.sends(key).filter((exchange) => exchange.forwarded).length,
              0,
            );
            const mine = all.filter((email) => keys.some(({ to }) => email.destination.to.includes(to)));
            return mine.length >= forwarded ? mine : undefined;
          },
        );

        keys.forEach(({ key, to, plan }, i) => {
          const result: MailSendResult = results[i];
          const want = expected(plan);
          const exchanges = proxy.sends(key);
          const copies = emails.filter((email) => email.destination.to.includes(to));
          const context = { key, plan, result, exchanges: exchanges.map((e) => e.action) };

          expect({ ...context, status: result.status, ledgerStatus: result.ledgerStatus }).toEqual({
            ...context,
            status: want.status,
            ledgerStatus: want.status,
          });
          // Throttled calls are retried within the budget; a 5xx is never retried; nothing else is sent.
          expect({ ...context, calls: exchanges.length }).toEqual({ ...context, calls: want.calls });
          expect(copies.length).toBe(exchanges.filter((exchange) => exchange.forwarded).length);
          expect(copies.length).toBeLessThanOrEqual(1);
          if (want.status === 'sent') expect(copies).toHaveLength(1);
          if (want.status === 'failed') {
            expect(result).toMatchObject({ retryable: true });
            expect(copies).toHaveLength(0);
          }
          stats.keys++;
          stats[want.status]++;
          stats.throttledCalls += exchanges.filter((e) => e.action.kind === 'throttle').length;
          stats.fiveXx += exchanges.filter((e) => e.action.kind === 'fail').length;
        });

        // The ledger agrees, and no row is left pending.
        const entries = await Promise.all(keys.map(({ key }) => ledger.get(key)));
        entries.forEach((entry, i) => {
          expect(entry?.status).toBe(expected(keys[i].plan).status);
        });
        // A second send of every key calls SES no more (5xx rows stay unknown: never resent automatically).
        const callsBefore = keys.reduce((sum, { key }) => sum + proxy.sends(key).length, 0);
        const again = await Promise.all(
          keys.map(({ key, to }) =>
            mail.send({ idempotencyKey: key, to, subject: 'Burst', text: `for ${key}` }),
          ),
        );
        expect(again.every((result) => result.status === 'duplicate' && !result.inFlight)).toBe(true);
        expect(keys.reduce((sum, { key }) => sum + proxy.sends(key).length, 0)).toBe(callsBefore);
      }),
      { numRuns: RUNS, seed, endOnFailure: true },
    );
    console.log(`ses-burst: ${JSON.stringify(stats)}`);
    expect(stats.keys).toBeGreaterThanOrEqual(50 * RUNS);
  });
});
