import { MAX_KEY_LENGTH } from './dedup.constants';
import { MissingIdempotencyKeyError } from './dedup.errors';

/** Derives an idempotency key from a message; `null`/`undefined`/`''` means "no key". */
export type IdempotencyKeyFn<TMessage> = (message: TMessage) => string | number | null | undefined;

interface SqsMessageLike {
  Body?: string;
  MessageId?: string;
}

/** True for an SQS message as sqs-consumer hands it over (it has a string `Body`). */
export function isSqsMessage(value: unknown): value is SqsMessageLike {
  return typeof value === 'object' && value !== null && typeof (value as SqsMessageLike).Body === 'string';
}

/** The message id of an SQS message, if it is one. */
export function messageIdOf(value: unknown): string | undefined {
  return typeof value === 'object' && value !== null ? (value as SqsMessageLike).MessageId : undefined;
}

/**
 * The default key: the `eventId` field of an SQS message's JSON body, or of a plain object.
 * Returns `undefined` when there is none.
 */
export function defaultIdempotencyKey(message: unknown): string | undefined {
  let payload: unknown = message;
  if (isSqsMessage(message)) {
    try {
      payload = JSON.parse(message.Body ?? '');
    } catch {
      return undefined;
    }
  }
  if (typeof payload !== 'object' || payload === null) return undefined;
  const eventId = (payload as { eventId?: unknown }).eventId;
  if (typeof eventId === 'number' && Number.isFinite(eventId)) return String(eventId);
  return typeof eventId === 'string' ? eventId : undefined;
}

/**
 * Resolves and validates the key of one message with the user's `key` function or the default.
 * @throws MissingIdempotencyKeyError when there is none, it is too long, or the function throws.
 */
export function resolveIdempotencyKey<TMessage>(
  message: TMessage,
  scope: string,
  keyFn?: IdempotencyKeyFn<TMessage>,
): string {
  const messageId = messageIdOf(message);
  let raw: string | number | null | undefined;
  try {
    raw = keyFn ? keyFn(message) : defaultIdempotencyKey(message);
  } catch (error) {
    // The function's message becomes the dead-letter reason: a validating key function can say why.
    const { name, message: detail } = error instanceof Error ? error : new Error(String(error));
    throw new MissingIdempotencyKeyError(
      scope,
      `key function threw ${name}${detail ? `: ${detail.slice(0, 500)}` : ''}`,
      messageId,
    );
  }
  const key = typeof raw === 'number' ? String(raw) : raw;
  if (typeof key !== 'string' || key.length === 0) {
    throw new MissingIdempotencyKeyError(
      scope,
      keyFn ? 'the key function returned no key' : 'the JSON body has no "eventId"',
      messageId,
    );
  }
  if (key.length > MAX_KEY_LENGTH) {
    throw new MissingIdempotencyKeyError(
      scope,
      `the key is longer than ${MAX_KEY_LENGTH} characters`,
      messageId,
    );
  }
  return key;
}

/**
 * Checks a scope: non-empty, at most 200 characters, no `:` (it separates scope from key, so a
 * colon would let two scopes collide).
 */
export function assertValidScope(scope: string): void {
  if (scope.length === 0 || scope.length > 200 || scope.includes(':')) {
    throw new TypeError(`Invalid idempotency scope "${scope}": 1-200 characters, no ":"`);
  }
}

/** The stored key: `keyPrefix + scope + ':' + key`. This is the key-stability contract. */
export function storageKeyFor(keyPrefix: string, scope: string, key: string): string {
  return `${keyPrefix}${scope}:${key}`;
}
