import fc from 'fast-check';
import { randomUUID } from 'node:crypto';
import { addressKey } from '../src/lib/address/mail-address';
import { MailLedgerRepository } from '../src/lib/ledger/mail-ledger.repository';
import { MailSuppressionService } from '../src/lib/suppression/mail-suppression.service';
import { createMailTestApp, type MailTestApp, uniqueAddress, uniqueKey } from './support/mail-e2e.harness';

const seed = Number(process.env.FC_SEED ?? Math.floor(Math.random() * 2 ** 31));
console.log(`ses-stamp.model.e2e-spec: fast-check seed ${seed} (rerun with FC_SEED=${seed})`);

/**
 * The stamp before an SES call (one statement reads the suppression list, takes the row and stamps
 * it) against a model: which recipients go out, which are left out, what the row and its history
 * become, for any mix of suppressed mailboxes, spellings of one mailbox and repeated recipients.
 */
describe('the SES-call stamp matches its model', () => {
  let t: MailTestApp;
  let repository: MailLedgerRepository;
  let suppressions: MailSuppressionService;

  beforeAll(async () => {
    t = await createMailTestApp();
    repository = t.app.get(MailLedgerRepository);
    suppressions = t.app.get(MailSuppressionService);
  });
  afterAll(() => t.close());

  /** A mailbox as a recipient may spell it: bare, upper-cased, or with a display name. */
  const spell = (address: string, how: number) =>
    how === 0 ? address : how === 1 ? address.toUpperCase() : `"Some One" <${address}>`;

  async function pendingRow(recipients: string[], token: string): Promise<string> {
    const key = uniqueKey('stamp');
    const { inserted } = await repository.claim({
      idempotencyKey: key,
      status: 'pending',
      recipients: recipients.map(addressKey),
      message: { to: recipients, from: 'digest@once.local', subject: 's', text: 't', headers: [] },
      contentHash: randomUUID(),
      claimToken: token,
      suppressed: [],
    });
    expect(inserted).toBe(true);
    return key;
  }

  it('leaves out exactly the suppressed recipients, stamps or suppresses the row, and says so in its history', async () => {
    const scenario = fc.record({
      mailboxes: fc.integer({ min: 1, max: 4 }),
      recipients: fc.array(fc.record({ box: fc.nat({ max: 3 }), how: fc.nat({ max: 2 }) }), {
        minLength: 1,
        maxLength: 5,
      }),
      suppressed: fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
    });
    await fc.assert(
      fc.asyncProperty(scenario, async ({ mailboxes, recipients: picks, suppressed }) => {
        const boxes = Array.from({ length: mailboxes }, () => uniqueAddress('m'));
        const recipients = picks.map(({ box, how }) => spell(boxes[box % mailboxes] as string, how));
        const blocked = new Set(boxes.filter((_, i) => suppressed[i]).map(addressKey));
        for (const box of boxes) if (blocked.has(addressKey(box))) await suppressions.suppress(box, 'manual');
        const token = randomUUID();
        const key = await pendingRow(recipients, token);

        const stamp = await repository.markSesCall(key, token, recipients);

        const allowed = recipients.filter((r) => !blocked.has(addressKey(r)));
        const leftOut = recipients.filter((r) => blocked.has(addressKey(r)));
        const row = await repository.find(key);
        const last = row?.history[row.history.length - 1] as { event?: string; suppressed?: string[] };
        if (allowed.length === 0) {
          expect(stamp).toEqual({ status: 'suppressed', suppressed: leftOut });
          expect(row).toMatchObject({ status: 'suppressed', ses_called_at: null });
          expect(last).toMatchObject({ event: 'suppressed-before-ses', suppressed: leftOut });
        } else {
          expect(stamp).toEqual({ status: 'stamped', recipients: allowed, suppressed: leftOut });
          expect(row?.status).toBe('pending');
          expect(row?.ses_called_at).toBeInstanceOf(Date);
          if (leftOut.length > 0)
            expect(last).toMatchObject({ event: 'recipients-suppressed-before-ses', suppressed: leftOut });
          else expect(row?.history).toHaveLength(1); // only the claim's own event
        }
      }),
      { seed, numRuns: 25 },
    );
  });

  it('does not stamp a row held under another token, or no longer pending', async () => {
    const address = uniqueAddress('x');
    const token = randomUUID();
    const key = await pendingRow([address], token);
    expect(await repository.markSesCall(key, randomUUID(), [address])).toEqual({ status: 'not-owned' });
    expect((await repository.find(key))?.ses_called_at).toBeNull();
    await repository.complete(key, token, { status: 'sent', sesMessageId: 'ses-1' });
    expect(await repository.markSesCall(key, token, [address])).toEqual({ status: 'not-owned' });
    expect(await repository.markSesCall(uniqueKey('missing'), token, [address])).toEqual({
      status: 'not-owned',
    });
  });
});
