import { SESv2Client } from '@aws-sdk/client-sesv2';
import { waitFor } from '@once/testing';
import { setTimeout as sleep } from 'node:timers/promises';
import { MailLedgerService, MailResendNotAllowedError, MailService } from '../src';
import {
  createMailTestApp,
  emailsTo,
  emulatorSesClient,
  env,
  type MailTestApp,
  uniqueAddress,
  uniqueKey,
  waitForEmails,
} from './support/mail-e2e.harness';
import { type SesFaultAction, SesFaultProxy } from './support/ses-fault.proxy';

const DEADLINE_MS = 1_500;
const STALE_MS = 3_000;
/** The proxy answers this long after the request, i.e. well after the deadline. */
const HOLD_MS = 2_500;

/**
 * An app-supplied SESv2Client whose HTTP handler drops the abort signal (as a custom or older
 * handler may): at the deadline the call is not aborted, and SES's answer still arrives later.
 */
type Handler = SESv2Client['config']['requestHandler'];

function signalIgnoringClient(endpoint: string): SESv2Client {
  const plain = emulatorSesClient(endpoint);
  const inner = plain.config.requestHandler as Handler;
  const handler: Handler = {
    handle: (request, options) => inner.handle(request, { ...options, abortSignal: undefined }),
    destroy: () => inner.destroy?.(),
  };
  return new SESv2Client({
    region: env('AWS_REGION'),
    endpoint,
    credentials: { accessKeyId: env('AWS_ACCESS_KEY_ID'), secretAccessKey: env('AWS_SECRET_ACCESS_KEY') },
    maxAttempts: 1,
    requestHandler: handler,
  });
}

describe('a late SES answer (app-supplied client whose handler ignores the abort)', () => {
  let proxy: SesFaultProxy;
  let client: SESv2Client;
  let t: MailTestApp;
  let mail: MailService;
  let ledger: MailLedgerService;
  const plans = new Map<string, (nth: number) => SesFaultAction>();

  beforeAll(async () => {
    proxy = new SesFaultProxy(env('SES_ENDPOINT'), ({ key, nth }) =>
      key && plans.has(key) ? plans.get(key)!(nth) : { kind: 'pass' },
    );
    const endpoint = await proxy.listen();
    client = signalIgnoringClient(endpoint);
    t = await createMailTestApp({ ses: { client, requestTimeoutMs: DEADLINE_MS }, staleAfterMs: STALE_MS });
    mail = t.app.get(MailService);
    ledger = t.app.get(MailLedgerService);
  });

  afterAll(async () => {
    await t.close();
    client.destroy();
    await proxy.close();
  });

  it('records the MessageId that arrives after the deadline: the row settles sent and a resend is refused, even after the stale window', async () => {
    const to = uniqueAddress();
    const key = uniqueKey('late');
    plans.set(key, () => ({ kind: 'hold', ms: HOLD_MS }));

    const first = await mail.send({ idempotencyKey: key, to, subject: 'Digest', text: 'Three new things.' });
    expect(first).toMatchObject({ status: 'unknown', ledgerStatus: 'unknown' });
    const [exchange] = proxy.sends(key);
    // The handler really ignored the abort: the connection stayed open past the deadline.
    await waitFor('the held answer to be written', () => (exchange.closedAt ? true : undefined), {
      timeoutMs: HOLD_MS + 10_000,
    });
    expect(exchange.closedAt! - exchange.at).toBeGreaterThanOrEqual(HOLD_MS - 100);
    const [stored] = await waitForEmails(to, 1);

    const settled = await waitFor(
      'the late answer to be recorded',
      async () => {
        const entry = await ledger.get(key);
        return entry?.status === 'sent' ? entry : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 50 },
    );
    expect(settled.sesMessageId).toBe(stored.messageId);
    const events = settled.history.map((event) => event.event);
    expect(events.indexOf('unknown')).toBeGreaterThanOrEqual(0);
    expect(events.indexOf('late-sent')).toBeGreaterThan(events.indexOf('unknown'));
    expect(settled.history.find((event) => event.event === 'late-sent')).toMatchObject({
      sesMessageId: stored.messageId,
    });

    // Once the stale window after the call has passed a resend would be allowed for an unknown row.
    await sleep(Math.max(0, new Date(settled.sesCalledAt!).getTime() + STALE_MS + 500 - Date.now()));
    const refused = await ledger.resend(key, { actor: 'test' }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(MailResendNotAllowedError);
    expect((refused as MailResendNotAllowedError).currentStatus).toBe('sent');
    expect(
      await mail.send({ idempotencyKey: key, to, subject: 'Digest', text: 'Three new things.' }),
    ).toMatchObject({ status: 'duplicate', ledgerStatus: 'sent', sesMessageId: stored.messageId });
    expect(proxy.sends(key)).toHaveLength(1);
    expect(await emailsTo(to)).toHaveLength(1);
  });
});
