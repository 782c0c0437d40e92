/** Injection token of the validated {@link ResolvedDedupOptions}. */
export const DEDUP_OPTIONS = Symbol('DEDUP_OPTIONS');

/** Property under which `@Idempotent` has Nest inject the IdempotencyService into the decorated class. */
export const IDEMPOTENT_RUNNER_PROPERTY = Symbol('once:dedup:idempotent-runner');

/** Metadata `@Idempotent` attaches to the method it wraps (its resolved scope and options). */
export const IDEMPOTENT_METADATA = Symbol.for('once:dedup:idempotent');

/** Metadata `@Transactional` attaches to a method. */
export const TRANSACTIONAL_METADATA = Symbol.for('once:dedup:transactional');

/** The key under which @ssut/nestjs-sqs 3 stores `@SqsMessageHandler` metadata (not exported by the package). */
export const SQS_CONSUMER_METHOD = Symbol.for('SQS_CONSUMER_METHOD');

/** Scope used by IdempotencyService calls that do not name one. */
export const DEFAULT_SCOPE = 'default';

/**
 * Longest accepted idempotency key, in UTF-8 bytes (what every store holds). With the longest
 * keyPrefix and scope the stored key is at most 200 + 200 + 1 + 512 = 913 bytes: far inside the
 * Postgres btree entry limit (2704 bytes; an incompressible text key fails from ~2696), and Redis
 * keys are binary-safe up to 512 MB. ASCII ids (UUID 36, ULID 26, snowflake 19, SHA-256 hex 64) fit
 * many times over.
 */
export const MAX_KEY_BYTES = 512;

/** Longest scope, in UTF-8 bytes. */
export const MAX_SCOPE_BYTES = 200;

/** Longest DedupModule `keyPrefix`, in UTF-8 bytes. */
export const MAX_KEY_PREFIX_BYTES = 200;

/** Postgres table and sequence created by the dedup migrations. */
export const DEDUP_TABLE = 'dedup_records';
export const DEDUP_FENCE_SEQUENCE = 'dedup_fence_seq';

/** Message attributes added to a dead-lettered copy (same names as the worker's DeadLetterService). */
export const DEAD_LETTER_ATTRIBUTES = {
  reason: 'once-dead-letter-reason',
  sourceQueue: 'once-source-queue',
  sourceMessageId: 'once-source-message-id',
} as const;
