import { MAX_KEY_BYTES, MAX_KEY_PREFIX_BYTES, MAX_SCOPE_BYTES } from './dedup.constants';
import { InvalidIdempotencyKeyError, MissingIdempotencyKeyError } from './dedup.errors';

/**
 * Derives an idempotency key from a message; `null`/`undefined`/`''` means "no key". Numbers must
 * be safe integers; bigints are read exactly.
 */
export type IdempotencyKeyFn<TMessage> = (message: TMessage) => string | number | bigint | null | undefined;

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

/** A `defaultIdempotencyKey` refusal: the eventId is there but unusable. */
class UnusableEventIdError extends TypeError {}

/**
 * Index of the first C0/C1 control (NUL included) or lone surrogate, or -1. Scans UTF-16 code
 * units: a lone surrogate would become U+FFFD in UTF-8, so two keys would collide. A loop, not a
 * regex: it runs for every key on the hot path.
 */
function firstUnsafeIndex(value: string): number {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code < 0x20 || (code >= 0x7f && code <= 0x9f)) return i;
    if (code >= 0xd800 && code <= 0xdfff) {
      const next = value.charCodeAt(i + 1); // NaN past the end
      if (code > 0xdbff || !(next >= 0xdc00 && next <= 0xdfff)) return i;
      i++;
    }
  }
  return -1;
}

const hex = (code: number) => `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;

/** The problem with one piece of stored-key text, or `undefined`. Never echoes the text itself. */
function textProblem(value: unknown, what: string, maxBytes: number, allowEmpty = false): string | undefined {
  if (typeof value !== 'string') return `${what} is ${kindOf(value)}, not a string`;
  if (value.length === 0) return allowEmpty ? undefined : `${what} is empty`;
  // A UTF-16 unit is 1 to 3 UTF-8 bytes (a surrogate pair 4 for 2): count only when in doubt.
  if (value.length * 3 > maxBytes) {
    const bytes = Buffer.byteLength(value, 'utf8');
    if (bytes > maxBytes) return `${what} is ${bytes} bytes; at most ${maxBytes} (UTF-8)`;
  }
  const index = firstUnsafeIndex(value);
  if (index < 0) return undefined;
  const code = value.charCodeAt(index);
  if (code >= 0xd800 && code <= 0xdfff) {
    return `${what} contains a lone surrogate ${hex(code)} at index ${index} (not valid Unicode: UTF-8 stores would turn it into U+FFFD)`;
  }
  return `${what} contains ${code === 0 ? 'NUL (U+0000)' : `control character ${hex(code)}`} at index ${index}`;
}

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  const type = typeof value;
  return type === 'undefined' ? type : `${/^[aeiou]/.test(type) ? 'an' : 'a'} ${type}`;
}

/**
 * The problem with an idempotency key, or `undefined` when every store holds it exactly and apart
 * from every other key: non-empty, at most {@link MAX_KEY_BYTES} UTF-8 bytes, no C0/C1 control
 * character (NUL included) and no lone surrogate. The one check of every entry point.
 */
export function validateIdempotencyKey(key: string): string | undefined {
  return textProblem(key, 'the key', MAX_KEY_BYTES);
}

/** The problem with a scope (as for keys, at most {@link MAX_SCOPE_BYTES} bytes, and no `:`), or `undefined`. */
export function validateIdempotencyScope(scope: string): string | undefined {
  const problem = textProblem(scope, 'the scope', MAX_SCOPE_BYTES);
  if (problem) return problem;
  // ':' separates scope from key: with a colon in scopes, "a:b" + "c" and "a" + "b:c" would collide.
  return scope.includes(':') ? 'the scope contains ":" (it separates scope from key)' : undefined;
}

/** The problem with a DedupModule `keyPrefix` (may be empty; at most {@link MAX_KEY_PREFIX_BYTES} bytes), or `undefined`. */
export function validateKeyPrefix(keyPrefix: string): string | undefined {
  return textProblem(keyPrefix, 'the keyPrefix', MAX_KEY_PREFIX_BYTES, true);
}

/**
 * The problem with a `list` prefix (of `scope:key`, without the keyPrefix), or `undefined`: the
 * part before the first `:` must be scope text and the rest key text, so no store is ever asked
 * about text it would refuse (Postgres: NUL) or read differently (lone surrogates).
 */
export function validateListPrefix(prefix: string): string | undefined {
  if (typeof prefix !== 'string') return `the prefix is ${kindOf(prefix)}, not a string`;
  const colon = prefix.indexOf(':');
  if (colon < 0) return prefix === '' ? undefined : validateIdempotencyScope(prefix);
  const key = prefix.slice(colon + 1);
  return validateIdempotencyScope(prefix.slice(0, colon)) ?? (key ? validateIdempotencyKey(key) : undefined);
}

/**
 * Throws unless `key` is a valid idempotency key (see {@link validateIdempotencyKey}).
 * @throws InvalidIdempotencyKeyError naming the problem.
 */
export function assertValidIdempotencyKey(key: string, scope: string, messageId?: string): void {
  const problem = validateIdempotencyKey(key);
  if (problem) throw new InvalidIdempotencyKeyError(scope, problem, messageId);
}

/**
 * Checks a scope: non-empty, at most 200 UTF-8 bytes, no control character or lone surrogate, no
 * `:` (it separates scope from key, so a colon would let two scopes collide).
 * @throws TypeError naming the problem.
 */
export function assertValidScope(scope: string): void {
  const problem = validateIdempotencyScope(scope);
  if (problem) throw new TypeError(`Invalid idempotency scope: ${problem}`);
}

/** The digits as the producer wrote them (JSON.parse rounded them), when they are the eventId's. */
function rawEventIdNumber(body: string, value: number): string | undefined {
  const raw = /"eventId"\s*:\s*(-?[0-9][0-9.eE+-]{0,40})/.exec(body)?.[1];
  return raw !== undefined && Number(raw) === value ? raw : undefined;
}

/** Why a number is no key (only safe integers are: beyond ±(2^53-1), distinct ids share a double). */
function unsafeNumberProblem(value: number, subject: string, raw?: string): string | undefined {
  if (Number.isSafeInteger(value)) return undefined;
  const rounded = Number.isInteger(value)
    ? ` (${raw !== undefined && raw !== String(value) ? `read as ${value}: ` : ''}JSON numbers beyond 2^53-1 lose precision)`
    : '';
  return `${subject} ${raw ?? String(value)}, which is not a safe integer${rounded}; send it as a string`;
}

/**
 * The default key: the `eventId` field of an SQS message's JSON body, or of a plain object.
 * A string is the key; a number must be a safe integer (JSON numbers beyond 2^53-1 arrive
 * rounded, so two events could share a key): send large ids (snowflakes) as strings. A bigint
 * (plain objects) is read exactly.
 * @returns `undefined` when there is none (no JSON object, no or a null/empty eventId).
 * @throws TypeError naming the problem when the eventId is of another type or an unsafe number.
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
  if (eventId === undefined || eventId === null || eventId === '') return undefined;
  if (typeof eventId === 'string') return eventId;
  if (typeof eventId === 'bigint') return String(eventId);
  if (typeof eventId === 'number') {
    const raw = isSqsMessage(message) ? rawEventIdNumber(message.Body ?? '', eventId) : undefined;
    const problem = unsafeNumberProblem(eventId, 'eventId is', raw);
    if (problem) throw new UnusableEventIdError(problem);
    return String(eventId);
  }
  throw new UnusableEventIdError(`eventId is ${kindOf(eventId)}, not a string or a safe integer`);
}

/**
 * Resolves and validates the key of one message with the user's `key` function or the default.
 * @throws InvalidIdempotencyKeyError (a MissingIdempotencyKeyError) when the key is unusable: not a
 *   string or safe integer, or failing {@link validateIdempotencyKey}.
 * @throws MissingIdempotencyKeyError when there is none, or the function throws.
 */
export function resolveIdempotencyKey<TMessage>(
  message: TMessage,
  scope: string,
  keyFn?: IdempotencyKeyFn<TMessage>,
): string {
  const messageId = messageIdOf(message);
  let raw: unknown;
  try {
    raw = keyFn ? keyFn(message) : defaultIdempotencyKey(message);
  } catch (error) {
    if (error instanceof UnusableEventIdError)
      throw new InvalidIdempotencyKeyError(scope, error.message, messageId);
    // The function's message becomes the dead-letter reason: a validating key function can say why.
    const { name, message: detail } = error instanceof Error ? error : new Error(String(error));
    throw new MissingIdempotencyKeyError(
      scope,
      `key function threw ${name}${detail ? `: ${detail.slice(0, 500)}` : ''}`,
      messageId,
    );
  }
  if (raw === undefined || raw === null || raw === '') {
    throw new MissingIdempotencyKeyError(
      scope,
      keyFn ? 'the key function returned no key' : 'the JSON body has no "eventId"',
      messageId,
    );
  }
  let key: string;
  if (typeof raw === 'string') key = raw;
  else if (typeof raw === 'bigint') key = String(raw);
  else if (typeof raw === 'number') {
    const problem = unsafeNumberProblem(raw, 'the key function returned');
    if (problem) throw new InvalidIdempotencyKeyError(scope, problem, messageId);
    key = String(raw);
  } else {
    throw new InvalidIdempotencyKeyError(
      scope,
      `the key function returned ${kindOf(raw)}, not a string or a safe integer`,
      messageId,
    );
  }
  assertValidIdempotencyKey(key, scope, messageId);
  return key;
}

/**
 * The stored key: `keyPrefix + scope + ':' + key`. This is the key-stability contract. Every
 * IdempotencyService path builds its keys here, so this is where scope and key are validated
 * (the keyPrefix was, with the module options): nothing invalid reaches a store.
 * @throws TypeError for an invalid scope, InvalidIdempotencyKeyError for an invalid key.
 */
export function storageKeyFor(keyPrefix: string, scope: string, key: string): string {
  assertValidScope(scope);
  assertValidIdempotencyKey(key, scope);
  return `${keyPrefix}${scope}:${key}`;
}
