import { decodeMailLedgerCursor, encodeMailLedgerCursor, InvalidMailLedgerCursorError } from '@once/mail';
import fc from 'fast-check';

const seed = Number(process.env.FC_SEED ?? Math.floor(Math.random() * 2 ** 31));
console.log(`list-cursors.spec: fast-check seed ${seed} (rerun with FC_SEED=${seed})`);
const property = { seed, numRuns: 1000 };

/** `created_at::text` as Postgres writes it (ISO DateStyle), in any session time zone. */
const createdAt = fc
  .tuple(
    fc.date({
      min: new Date('1970-01-01T00:00:00Z'),
      max: new Date('9999-12-31T00:00:00Z'),
      noInvalidDate: true,
    }),
    fc.integer({ min: 0, max: 999_999 }),
    fc.constantFrom('+00', '-05', '+05:30', '+14', '-09:30'),
  )
  .map(
    ([date, micros, offset]) =>
      `${date.toISOString().slice(0, 19).replace('T', ' ')}${micros ? `.${String(micros).padStart(6, '0').replace(/0+$/, '')}` : ''}${offset}`,
  );
/** Keys Postgres can hold: no NUL, well-formed UTF-16. */
const ledgerKey = fc
  .string({ unit: 'binary', minLength: 1, maxLength: 80 })
  .filter((key) => !key.includes('\u0000') && !/\p{Cs}/u.test(key));

describe('mail ledger cursor', () => {
  it('decodes every cursor it encodes back to the row position', () => {
    fc.assert(
      fc.property(createdAt, ledgerKey, (at, key) => {
        const cursor = { createdAt: at, idempotencyKey: key };
        expect(decodeMailLedgerCursor(encodeMailLedgerCursor(cursor))).toEqual(cursor);
      }),
      property,
    );
  });

  it('either decodes a random string to a position it would encode back to it, or throws InvalidMailLedgerCursorError', () => {
    const anyCursor = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 60 }),
      fc.stringMatching(/^[A-Za-z0-9_-]{0,60}$/),
      fc
        .jsonValue({ maxDepth: 2 })
        .map((value) => Buffer.from(JSON.stringify(value) ?? '').toString('base64url')),
      fc
        .tuple(fc.oneof(createdAt, fc.string()), fc.oneof(ledgerKey, fc.string({ unit: 'binary' })))
        .map((pair) => Buffer.from(JSON.stringify(pair)).toString('base64url')),
    );
    fc.assert(
      fc.property(anyCursor, (cursor) => {
        let decoded;
        try {
          decoded = decodeMailLedgerCursor(cursor);
        } catch (error) {
          expect(error).toBeInstanceOf(InvalidMailLedgerCursorError);
          return;
        }
        expect(encodeMailLedgerCursor(decoded)).toBe(cursor);
      }),
      property,
    );
  });

  it.each([
    ['NUL bytes', 'AAAA'],
    ['not an array', Buffer.from('{"a":1}').toString('base64url')],
    ['not a date', Buffer.from('["not-a-date","k"]').toString('base64url')],
    ['no such day', Buffer.from('["2026-02-30 07:00:00+00","k"]').toString('base64url')],
    ['hour 24', Buffer.from('["2026-02-03 24:00:00+00","k"]').toString('base64url')],
    ['NUL in the key', Buffer.from('["2026-02-03 07:00:00+00","k\\u0000"]').toString('base64url')],
    [
      'a lone surrogate in the key',
      Buffer.from('["2026-02-03 07:00:00+00","\\ud800"]').toString('base64url'),
    ],
    ['JSON the encoder does not write', Buffer.from('[ "2026-02-03 07:00:00+00","k"]').toString('base64url')],
    ['three items', Buffer.from('["2026-02-03 07:00:00+00","k","x"]').toString('base64url')],
    ['padding', `${Buffer.from('["2026-02-03 07:00:00+00","k"]').toString('base64url')}==`],
  ])('refuses a cursor: %s', (_what, cursor) => {
    expect(() => decodeMailLedgerCursor(cursor)).toThrow(InvalidMailLedgerCursorError);
  });
});
