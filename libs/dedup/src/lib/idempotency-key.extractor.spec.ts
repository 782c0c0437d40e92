import fc from 'fast-check';
import { MAX_KEY_BYTES, MAX_KEY_PREFIX_BYTES, MAX_SCOPE_BYTES } from './dedup.constants';
import { InvalidIdempotencyKeyError, MissingIdempotencyKeyError } from './dedup.errors';
import {
  assertValidIdempotencyKey,
  assertValidScope,
  defaultIdempotencyKey,
  resolveIdempotencyKey,
  storageKeyFor,
  validateIdempotencyKey,
  validateIdempotencyScope,
  validateKeyPrefix,
  validateListPrefix,
} from './idempotency-key.extractor';

const sqsMessage = (body: string) => ({ MessageId: 'm-1', ReceiptHandle: 'r-1', Body: body });

const seed = Number(process.env.FC_SEED ?? Math.floor(Math.random() * 2 ** 31));
console.log(`idempotency-key.extractor.spec: fast-check seed ${seed} (rerun with FC_SEED=${seed})`);
const property = { seed, numRuns: 2000 };

const utf8 = (value: string) => Buffer.from(value, 'utf8');
/** Any UTF-16 code unit, lone surrogates and control characters included. */
const anyUnit = fc.integer({ min: 0, max: 0xffff }).map((code) => String.fromCharCode(code));
const anyString = fc.oneof(
  fc.string({ unit: anyUnit, maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({
    unit: fc.constantFrom('a', ':', '\ud800', '\udc00', '\ud83d\ude00', '\u0000', 'é'),
    maxLength: 8,
  }),
);

/** What the validator promises, written independently of its implementation. */
const isValidKeyText = (value: string, maxBytes: number) => {
  if (value.length === 0 || utf8(value).length > maxBytes) return false;
  if (utf8(value).toString('utf8') !== value) return false; // lone surrogates do not survive UTF-8
  return ![...value].some((char) => {
    const code = char.codePointAt(0) as number;
    return code <= 0x1f || (code >= 0x7f && code <= 0x9f);
  });
};

const reasonOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(MissingIdempotencyKeyError);
    return (error as MissingIdempotencyKeyError).reason;
  }
  throw new Error('expected a MissingIdempotencyKeyError');
};

describe('idempotency key derivation', () => {
  it('defaults to the eventId of an SQS message JSON body', () => {
    expect(defaultIdempotencyKey(sqsMessage('{"eventId":"evt-1","x":1}'))).toBe('evt-1');
    expect(defaultIdempotencyKey(sqsMessage('{"eventId":42}'))).toBe('42');
    expect(defaultIdempotencyKey(sqsMessage('{"eventId":9007199254740991}'))).toBe('9007199254740991');
    expect(defaultIdempotencyKey(sqsMessage('{"eventId":-0}'))).toBe('0');
  });

  it('defaults to the eventId of a plain object argument, bigints read losslessly', () => {
    expect(defaultIdempotencyKey({ eventId: 'evt-2' })).toBe('evt-2');
    expect(defaultIdempotencyKey({ eventId: 2n ** 64n + 1n })).toBe('18446744073709551617');
  });

  it('finds no default key in malformed, keyless or non-object bodies', () => {
    expect(defaultIdempotencyKey(sqsMessage('not json'))).toBeUndefined();
    expect(defaultIdempotencyKey(sqsMessage('{"id":"x"}'))).toBeUndefined();
    expect(defaultIdempotencyKey(sqsMessage('{"eventId":null}'))).toBeUndefined();
    expect(defaultIdempotencyKey(sqsMessage('"evt"'))).toBeUndefined();
    expect(defaultIdempotencyKey(undefined)).toBeUndefined();
  });

  it('uses the key function when given', () => {
    const message = sqsMessage('{"orderId":"o-9"}');
    const key = resolveIdempotencyKey(message, 'Orders.handle', (m) => `order:${JSON.parse(m.Body).orderId}`);
    expect(key).toBe('order:o-9');
    expect(resolveIdempotencyKey(message, 'Orders.handle', () => 7)).toBe('7');
  });

  it.each([
    ['no eventId', sqsMessage('{}'), undefined, 'the JSON body has no "eventId"'],
    ['an empty eventId', sqsMessage('{"eventId":""}'), undefined, 'the JSON body has no "eventId"'],
    [
      'a key function returning nothing',
      sqsMessage('{}'),
      () => undefined,
      'the key function returned no key',
    ],
    [
      'a key function that throws',
      sqsMessage('{}'),
      () => {
        throw new SyntaxError('bad');
      },
      'key function threw SyntaxError: bad',
    ],
  ])('rejects %s with MissingIdempotencyKeyError', (_case, message, keyFn, reason) => {
    let error: unknown;
    try {
      resolveIdempotencyKey(message, 'Jobs.handle', keyFn);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(MissingIdempotencyKeyError);
    expect(error).not.toBeInstanceOf(InvalidIdempotencyKeyError);
    expect(error).toMatchObject({ scope: 'Jobs.handle', messageId: 'm-1' });
    expect((error as MissingIdempotencyKeyError).reason).toContain(reason);
  });

  it.each([
    [
      'an eventId beyond 2^53 (the raw digits are named, not the rounded number)',
      '{"eventId": 9007199254740993}',
      'eventId is 9007199254740993, which is not a safe integer (read as 9007199254740992: JSON numbers beyond 2^53-1 lose precision); send it as a string',
    ],
    [
      'an eventId of exactly 2^53',
      '{"eventId":9007199254740992}',
      'eventId is 9007199254740992, which is not a safe integer',
    ],
    [
      'a negative unsafe eventId',
      '{"eventId":-9007199254740993}',
      'eventId is -9007199254740993, which is not a safe integer',
    ],
    ['a fractional eventId', '{"eventId":1.5}', 'eventId is 1.5, which is not a safe integer'],
    ['an exponent eventId', '{"eventId":1e300}', 'eventId is 1e300, which is not a safe integer'],
    ['a boolean eventId', '{"eventId":true}', 'eventId is a boolean, not a string or a safe integer'],
    ['an object eventId', '{"eventId":{"id":1}}', 'eventId is an object, not a string or a safe integer'],
    ['an array eventId', '{"eventId":["a"]}', 'eventId is an array, not a string or a safe integer'],
    ['a NUL in the eventId', '{"eventId":"a\\u0000b"}', 'the key contains NUL (U+0000) at index 1'],
    ['a control character', '{"eventId":"a\\tb"}', 'the key contains control character U+0009 at index 1'],
    [
      'a C1 control character',
      '{"eventId":"ab\\u0085"}',
      'the key contains control character U+0085 at index 2',
    ],
    ['a DEL', '{"eventId":"\\u007f"}', 'the key contains control character U+007F at index 0'],
    [
      'a lone high surrogate',
      '{"eventId":"x\\ud800"}',
      'the key contains a lone surrogate U+D800 at index 1 (not valid Unicode: UTF-8 stores would turn it into U+FFFD)',
    ],
    ['a lone low surrogate', '{"eventId":"\\udc00x"}', 'the key contains a lone surrogate U+DC00 at index 0'],
    [
      'a key over 512 bytes',
      JSON.stringify({ eventId: 'x'.repeat(513) }),
      'the key is 513 bytes; at most 512 (UTF-8)',
    ],
    ['512 characters of 2-byte UTF-8', JSON.stringify({ eventId: 'é'.repeat(512) }), 'the key is 1024 bytes'],
  ])('refuses %s with InvalidIdempotencyKeyError and a clear reason', (_case, body, reason) => {
    let error: unknown;
    try {
      resolveIdempotencyKey(sqsMessage(body), 'Jobs.handle');
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(InvalidIdempotencyKeyError);
    expect(error).toBeInstanceOf(MissingIdempotencyKeyError); // so the SQS runner dead-letters it
    expect(error).toMatchObject({
      name: 'InvalidIdempotencyKeyError',
      scope: 'Jobs.handle',
      messageId: 'm-1',
    });
    const { reason: actual, message } = error as InvalidIdempotencyKeyError;
    expect(actual).toContain(reason);
    expect(message).toBe(`Invalid idempotency key for Jobs.handle (message m-1): ${actual}`);
    // The reason becomes an SQS message attribute: it must never carry the offending characters.
    expect(isValidKeyText(actual, 1024)).toBe(true);
  });

  it('applies the same rules to what a key function returns', () => {
    const message = sqsMessage('{}');
    expect(reasonOf(() => resolveIdempotencyKey(message, 's', () => 2 ** 53))).toContain(
      'the key function returned 9007199254740992, which is not a safe integer',
    );
    expect(reasonOf(() => resolveIdempotencyKey(message, 's', () => Number.NaN))).toContain('NaN');
    expect(reasonOf(() => resolveIdempotencyKey(message, 's', () => 0.1))).toContain('0.1');
    expect(reasonOf(() => resolveIdempotencyKey(message, 's', () => 'a\u0000'))).toContain('NUL (U+0000)');
    expect(
      reasonOf(() => resolveIdempotencyKey(message, 's', () => ({ id: 1 }) as unknown as string)),
    ).toContain('the key function returned an object, not a string or a safe integer');
    expect(resolveIdempotencyKey(message, 's', () => 10n as unknown as string)).toBe('10');
  });

  it('accepts exactly 512 bytes, including multi-byte characters', () => {
    expect(resolveIdempotencyKey(sqsMessage(JSON.stringify({ eventId: 'x'.repeat(512) })), 's')).toHaveLength(
      512,
    );
    const emoji = '\ud83d\ude00'.repeat(128); // 4 bytes each
    expect(validateIdempotencyKey(emoji)).toBeUndefined();
    expect(validateIdempotencyKey(`${emoji}x`)).toContain('513 bytes');
  });

  it('builds the stored key as keyPrefix + scope + ":" + key', () => {
    expect(storageKeyFor('once:dedup:', 'SendEmailConsumer.handle', 'evt-1')).toBe(
      'once:dedup:SendEmailConsumer.handle:evt-1',
    );
  });

  it('validates in storageKeyFor, the function every service path builds its keys with', () => {
    expect(() => storageKeyFor('p:', 'Jobs.handle', 'a\u0000b')).toThrow(InvalidIdempotencyKeyError);
    expect(() => storageKeyFor('p:', 'Jobs.handle', '')).toThrow(/the key is empty/);
    expect(() => storageKeyFor('p:', 'Jobs.handle', 42 as unknown as string)).toThrow(
      /the key is a number, not a string/,
    );
    expect(() => storageKeyFor('p:', 'a:b', 'k')).toThrow(TypeError);
    expect(() => assertValidIdempotencyKey('x\udfff', 'Jobs.handle')).toThrow(
      /Invalid idempotency key for Jobs.handle: the key contains a lone surrogate U\+DFFF at index 1/,
    );
  });

  it('refuses scopes that could collide (":"), are empty, too long or not clean text', () => {
    expect(() => assertValidScope('Jobs.handle')).not.toThrow();
    expect(() => assertValidScope('a:b')).toThrow(TypeError);
    expect(() => assertValidScope('')).toThrow(TypeError);
    expect(() => assertValidScope('s'.repeat(201))).toThrow(TypeError);
    expect(() => assertValidScope('é'.repeat(101))).toThrow(/202 bytes; at most 200/);
    expect(validateIdempotencyScope('a\u0000')).toBe('the scope contains NUL (U+0000) at index 1');
    expect(validateIdempotencyScope('\ud800')).toContain('lone surrogate U+D800');
    expect(validateIdempotencyScope('a:b')).toBe('the scope contains ":" (it separates scope from key)');
  });

  it('validates list prefixes of "scope:key" part by part', () => {
    expect(validateListPrefix('')).toBeUndefined();
    expect(validateListPrefix('Jobs')).toBeUndefined();
    expect(validateListPrefix('Jobs.handle:')).toBeUndefined();
    expect(validateListPrefix('Jobs.handle:order:1')).toBeUndefined();
    expect(validateListPrefix('Jo\u0000')).toBe('the scope contains NUL (U+0000) at index 2');
    expect(validateListPrefix('Jobs:k\u0000')).toBe('the key contains NUL (U+0000) at index 1');
    expect(validateListPrefix(':k')).toBe('the scope is empty');
    expect(validateListPrefix(`Jobs:${'x'.repeat(513)}`)).toContain('the key is 513 bytes');
  });

  it('bounds the keyPrefix in bytes and refuses control characters in it', () => {
    expect(validateKeyPrefix('once:dedup:')).toBeUndefined();
    expect(validateKeyPrefix('')).toBeUndefined();
    expect(validateKeyPrefix('é'.repeat(101))).toContain('202 bytes; at most 200');
    expect(validateKeyPrefix('once\u0000')).toContain('NUL');
  });

  it('stays within every store index: the longest accepted stored key fits a Postgres btree entry', () => {
    // Postgres refuses index entries above 2704 bytes; an incompressible text key fails from ~2696 bytes.
    expect(MAX_KEY_PREFIX_BYTES + MAX_SCOPE_BYTES + 1 + MAX_KEY_BYTES).toBeLessThanOrEqual(2600);
  });
});

describe('idempotency key validation (properties)', () => {
  it('accepts exactly the non-empty, well-formed, control-free strings of at most 512 UTF-8 bytes', () => {
    fc.assert(
      fc.property(
        fc.oneof(anyString, fc.string({ unit: 'binary', minLength: 100, maxLength: 600 })),
        (key) => {
          const problem = validateIdempotencyKey(key);
          expect(problem === undefined).toBe(isValidKeyText(key, MAX_KEY_BYTES));
          if (problem !== undefined) expect(() => assertValidIdempotencyKey(key, 's')).toThrow(problem);
        },
      ),
      property,
    );
  });

  it('accepted keys round-trip byte-exactly through UTF-8 (what every store holds)', () => {
    fc.assert(
      fc.property(anyString, (key) => {
        fc.pre(validateIdempotencyKey(key) === undefined);
        expect(utf8(key).toString('utf8')).toBe(key);
      }),
      property,
    );
  });

  it('maps distinct accepted (scope, key) pairs to distinct stored bytes', () => {
    const scope = fc.oneof(fc.constantFrom('Jobs.handle', 'a', 'a.b'), anyString);
    fc.assert(
      fc.property(scope, anyString, scope, anyString, (scopeA, keyA, scopeB, keyB) => {
        fc.pre(
          validateIdempotencyScope(scopeA) === undefined && validateIdempotencyScope(scopeB) === undefined,
        );
        fc.pre(validateIdempotencyKey(keyA) === undefined && validateIdempotencyKey(keyB) === undefined);
        const a = utf8(storageKeyFor('once:dedup:', scopeA, keyA));
        const b = utf8(storageKeyFor('once:dedup:', scopeB, keyB));
        expect(a.equals(b)).toBe(scopeA === scopeB && keyA === keyB);
      }),
      { ...property, numRuns: 500 },
    );
  });

  it('decodes every stored key back to its (scope, key): the encoding is injective', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', minLength: 1, maxLength: 30 }), anyString, (scope, key) => {
        fc.pre(validateIdempotencyScope(scope) === undefined && validateIdempotencyKey(key) === undefined);
        const stored = utf8(storageKeyFor('once:dedup:', scope, key))
          .toString('utf8')
          .slice('once:dedup:'.length);
        const colon = stored.indexOf(':');
        expect([stored.slice(0, colon), stored.slice(colon + 1)]).toEqual([scope, key]);
      }),
      property,
    );
  });

  it('never puts the rejected characters into the reason', () => {
    fc.assert(
      fc.property(anyString, (key) => {
        const problem = validateIdempotencyKey(key);
        if (problem !== undefined) expect(isValidKeyText(problem, 1024)).toBe(true);
      }),
      property,
    );
  });
});
