/** Base class of every error raised by @once/dedup. */
export class DedupError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** DedupModule options that cannot work; the message names every problem. */
export class DedupConfigError extends DedupError {
  constructor(readonly issues: readonly string[]) {
    super(`Invalid DedupModule options:\n${issues.map((issue) => `  - ${issue}`).join('\n')}`);
  }
}

/**
 * A message has no usable idempotency key (no `eventId`, or the `key` function returned nothing,
 * threw), or an unusable one (see InvalidIdempotencyKeyError). Such a message is never processed: it is
 * dead-lettered (or, failing that, left to SQS redrive).
 */
export class MissingIdempotencyKeyError extends DedupError {
  constructor(
    readonly scope: string,
    readonly reason: string,
    readonly messageId?: string,
  ) {
    super(`No idempotency key for ${scope}${messageId ? ` (message ${messageId})` : ''}: ${reason}`);
  }
}

/**
 * Another worker holds a live claim on the key. Thrown so the message is NOT deleted: it comes
 * back after its visibility timeout, by then completed (acknowledged) or free (processed).
 */
export class DuplicateInFlightError extends DedupError {
  constructor(
    readonly scope: string,
    readonly idempotencyKey: string,
    readonly retryAfterMs: number,
    readonly messageId?: string,
  ) {
    super(
      `Idempotency key ${scope}:${idempotencyKey} is in progress elsewhere; retry in ~${retryAfterMs} ms`,
    );
  }
}

/** The claim was taken over by another worker (its lease expired): this owner may not complete it. */
export class StaleClaimError extends DedupError {
  constructor(
    readonly scope: string,
    readonly idempotencyKey: string,
    readonly messageId?: string,
  ) {
    super(`Claim on ${scope}:${idempotencyKey} is stale: another worker took it over`);
  }
}

/** A dedup store could not be reached (connection error or timeout). The message is retried. */
export class StoreUnavailableError extends DedupError {
  constructor(
    readonly store: 'redis' | 'postgres',
    detail: string,
    options?: ErrorOptions,
  ) {
    super(`Dedup store ${store} is unavailable: ${detail}`, options);
  }
}

/**
 * `forget` without `force` met a live IN_PROGRESS record: deleting it would let a second owner
 * start while the first is still running. Pass `force: true` once the holder is known to be gone.
 */
export class RecordInFlightError extends DedupError {
  constructor(
    readonly scope: string,
    readonly idempotencyKey: string,
  ) {
    super(`Idempotency key ${scope}:${idempotencyKey} is in progress; forget it with force to override`);
  }
}

/**
 * An idempotency key (or the `eventId` it comes from) that no store could hold exactly: empty,
 * over 512 UTF-8 bytes, with a control character or a lone surrogate, or a number that is not a
 * safe integer. `reason` names the problem (never the offending characters). A subclass of
 * MissingIdempotencyKeyError: the SQS runner dead-letters such a message without claiming anything.
 */
export class InvalidIdempotencyKeyError extends MissingIdempotencyKeyError {
  constructor(scope: string, reason: string, messageId?: string) {
    super(scope, reason, messageId);
    this.message = `Invalid idempotency key for ${scope}${messageId ? ` (message ${messageId})` : ''}: ${reason}`;
  }
}

/**
 * Postgres aborted a dedup statement as a deadlock victim (40P01) or a serialization failure
 * (40001). Outside a transaction the store retries it first; inside the caller's transaction
 * (transactional mode) it cannot, as the whole transaction is aborted: roll back and retry the unit.
 */
export class StoreConflictError extends StoreUnavailableError {
  constructor(
    readonly sqlState: string,
    detail: string,
    options?: ErrorOptions,
  ) {
    super('postgres', `${detail} (${sqlState})`, options);
  }
}

/**
 * A key arrived again with a payload whose fingerprint differs from the one its record was made
 * for, under `onPayloadMismatch: 'dead-letter'`: the producer reused an id for different content.
 */
export class PayloadMismatchError extends DedupError {
  constructor(
    readonly scope: string,
    readonly idempotencyKey: string,
    readonly messageId?: string,
  ) {
    super(`Idempotency key ${scope}:${idempotencyKey} was used before for a different payload`);
  }
}

/**
 * Thrown by an SQS single handler to say "not now, try again after `retryAfterMs`": the claim is
 * released like for any error, and the message is deferred the way in-flight duplicates are (a
 * delayed copy where receives could dead-letter it, else a visibility change), so waiting spends
 * no receive of the redrive policy. Without `retryAfterMs`, the queue's own timeout applies.
 */
export class RetryAfterError extends DedupError {
  constructor(
    message: string,
    readonly retryAfterMs?: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}
