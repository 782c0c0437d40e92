import fc from 'fast-check';
import { validateIdempotencyKey } from './idempotency-key.extractor';
import {
  checkScanCursor,
  decodeClusterScanCursor,
  decodeKeyCursor,
  encodeClusterScanCursor,
  encodeKeyCursor,
  InvalidListCursorError,
} from './list-cursor';

const seed = Number(process.env.FC_SEED ?? Math.floor(Math.random() * 2 ** 31));
console.log(`list-cursor.spec: fast-check seed ${seed} (rerun with FC_SEED=${seed})`);
const property = { seed, numRuns: 1000 };

/** Text a client could send as `?cursor=`: random, base64url-looking, or the encoding of bad bytes. */
const anyCursor = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 60 }),
  fc.stringMatching(/^[A-Za-z0-9_-]{0,60}$/),
  fc.uint8Array({ maxLength: 40 }).map((bytes) => Buffer.from(bytes).toString('base64url')),
  fc.string({ unit: 'binary', maxLength: 30 }).map((text) => Buffer.from(text, 'utf8').toString('base64')),
);

describe('Postgres list cursor', () => {
  it('decodes every cursor it encodes back to the stored key', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', minLength: 1, maxLength: 200 }), (key) => {
        fc.pre(validateIdempotencyKey(key) === undefined);
        expect(decodeKeyCursor(encodeKeyCursor(key))).toBe(key);
      }),
      property,
    );
  });

  it('either decodes a random string to a key it would encode back to it, or throws InvalidListCursorError', () => {
    fc.assert(
      fc.property(anyCursor, (cursor) => {
        let key: string;
        try {
          key = decodeKeyCursor(cursor);
        } catch (error) {
          expect(error).toBeInstanceOf(InvalidListCursorError);
          return;
        }
        expect(encodeKeyCursor(key)).toBe(cursor);
        expect(key).not.toContain('\u0000');
      }),
      property,
    );
  });

  it.each([
    ['NUL bytes', 'AAAA'],
    ['not UTF-8', '____'],
    ['empty', ''],
    ['padded', 'YQ=='],
    ['non-canonical trailing bits', 'YR'],
    ['not base64url', 'a b'],
    ['a control character', Buffer.from('k\u0001', 'utf8').toString('base64url')],
    ['a surrogate encoded as UTF-8', Buffer.from([0x6b, 0xed, 0xa0, 0x80]).toString('base64url')],
    ['longer than any stored key', 'YWJj'.repeat(1000)],
  ])('refuses a cursor: %s', (_what, cursor) => {
    expect(() => decodeKeyCursor(cursor)).toThrow(InvalidListCursorError);
  });
});

describe('Redis list cursor', () => {
  it('passes SCAN cursors Redis returns and refuses anything else', () => {
    expect(checkScanCursor('1')).toBe('1');
    expect(checkScanCursor('18446744073709551615')).toBe('18446744073709551615');
    for (const bad of ['0', '18446744073709551616', '-1', '01', '1e3', ' 1', 'abc', '', '1'.repeat(21)])
      expect(() => checkScanCursor(bad)).toThrow(InvalidListCursorError);
  });

  it('either accepts a random string as a decimal below 2^64 or throws InvalidListCursorError', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ maxLength: 22 }), fc.bigInt({ min: -1n, max: 2n ** 65n }).map(String)),
        (cursor) => {
          let accepted = false;
          try {
            accepted = checkScanCursor(cursor) === cursor;
          } catch (error) {
            expect(error).toBeInstanceOf(InvalidListCursorError);
          }
          expect(accepted).toBe(/^[1-9]\d*$/.test(cursor) && BigInt(cursor) < 2n ** 64n);
        },
      ),
      property,
    );
  });
});

describe('Redis Cluster list cursor', () => {
  const node = fc.oneof(
    fc.ipV4(),
    fc.domain(),
    fc.ipV6().map((ip) => `[${ip}]`),
  );
  const scan = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map(String);

  it('decodes every cursor it encodes back to the node and SCAN cursor', () => {
    fc.assert(
      fc.property(node, fc.integer({ min: 1, max: 65535 }), scan, (host, port, scanCursor) => {
        const cursor = { node: `${host}:${port}`, scan: scanCursor };
        expect(decodeClusterScanCursor(encodeClusterScanCursor(cursor))).toEqual(cursor);
      }),
      property,
    );
  });

  it('either decodes a random string to a cursor it would encode back to it, or throws InvalidListCursorError', () => {
    const tampered = fc
      .tuple(node, fc.integer({ min: 0, max: 99999 }), fc.oneof(scan, fc.string({ maxLength: 22 })))
      .map(([host, port, s]) => Buffer.from(`${host}:${port} ${s}`, 'utf8').toString('base64url'));
    fc.assert(
      fc.property(fc.oneof(anyCursor, tampered), (cursor) => {
        try {
          expect(encodeClusterScanCursor(decodeClusterScanCursor(cursor))).toBe(cursor);
        } catch (error) {
          expect(error).toBeInstanceOf(InvalidListCursorError);
        }
      }),
      property,
    );
  });

  it.each([
    ['empty', ''],
    ['a node cursor', '12345'],
    ['no scan cursor', Buffer.from('127.0.0.1:7000').toString('base64url')],
    ['port 0', Buffer.from('127.0.0.1:0 5').toString('base64url')],
    ['a scan cursor of 2^64', Buffer.from('127.0.0.1:7000 18446744073709551616').toString('base64url')],
    ['padded base64', `${Buffer.from('127.0.0.1:7000 5').toString('base64url')}=`],
  ])('refuses a cursor: %s', (_what, cursor) => {
    expect(() => decodeClusterScanCursor(cursor)).toThrow(InvalidListCursorError);
  });
});
