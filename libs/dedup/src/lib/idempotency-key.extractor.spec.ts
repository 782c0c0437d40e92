import { MissingIdempotencyKeyError } from './dedup.errors';
import {
  assertValidScope,
  defaultIdempotencyKey,
  resolveIdempotencyKey,
  storageKeyFor,
} from './idempotency-key.extractor';

const sqsMessage = (body: string) => ({ MessageId: 'm-1', ReceiptHandle: 'r-1', Body: body });

describe('idempotency key derivation', () => {
  it('defaults to the eventId of an SQS message JSON body', () => {
    expect(defaultIdempotencyKey(sqsMessage('{"eventId":"evt-1","x":1}'))).toBe('evt-1');
    expect(defaultIdempotencyKey(sqsMessage('{"eventId":42}'))).toBe('42');
  });

  it('defaults to the eventId of a plain object argument', () => {
    expect(defaultIdempotencyKey({ eventId: 'evt-2' })).toBe('evt-2');
  });

  it('finds no default key in malformed, keyless or non-object bodies', () => {
    expect(defaultIdempotencyKey(sqsMessage('not json'))).toBeUndefined();
    expect(defaultIdempotencyKey(sqsMessage('{"id":"x"}'))).toBeUndefined();
    expect(defaultIdempotencyKey(sqsMessage('"evt"'))).toBeUndefined();
    expect(defaultIdempotencyKey(sqsMessage('{"eventId":{"nested":true}}'))).toBeUndefined();
    expect(defaultIdempotencyKey(undefined)).toBeUndefined();
  });

  it('uses the key function when given', () => {
    const message = sqsMessage('{"orderId":"o-9"}');
    const key = resolveIdempotencyKey(message, 'Orders.handle', (m) => `order:${JSON.parse(m.Body).orderId}`);
    expect(key).toBe('order:o-9');
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
    [
      'a key over 512 characters',
      sqsMessage(JSON.stringify({ eventId: 'x'.repeat(513) })),
      undefined,
      'longer than 512',
    ],
  ])('rejects %s with MissingIdempotencyKeyError', (_case, message, keyFn, reason) => {
    let error: unknown;
    try {
      resolveIdempotencyKey(message, 'Jobs.handle', keyFn);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(MissingIdempotencyKeyError);
    expect(error).toMatchObject({ scope: 'Jobs.handle', messageId: 'm-1' });
    expect((error as MissingIdempotencyKeyError).reason).toContain(reason);
  });

  it('builds the stored key as keyPrefix + scope + ":" + key', () => {
    expect(storageKeyFor('once:dedup:', 'SendEmailConsumer.handle', 'evt-1')).toBe(
      'once:dedup:SendEmailConsumer.handle:evt-1',
    );
  });

  it('refuses scopes that could collide (":"), are empty or too long', () => {
    expect(() => assertValidScope('Jobs.handle')).not.toThrow();
    expect(() => assertValidScope('a:b')).toThrow(TypeError);
    expect(() => assertValidScope('')).toThrow(TypeError);
    expect(() => assertValidScope('s'.repeat(201))).toThrow(TypeError);
  });
});
