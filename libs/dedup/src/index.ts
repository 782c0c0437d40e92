export { DedupModule } from './lib/dedup.module';
export { resolveDedupOptions } from './lib/dedup.options';
export { IdempotencyService } from './lib/idempotency.service';
export { Idempotent, getIdempotentMetadata, type IdempotentOptions } from './lib/idempotent.decorator';
export { Transactional } from './lib/transactional.decorator';
export { currentIdempotencyContext, currentTransactionManager } from './lib/idempotency.context';
export {
  DEDUP_COUNTERS,
  DedupMetrics,
  type DedupCounter,
  type DedupMetricEvent,
  type DedupMetricsListener,
  type DedupMetricsSnapshot,
  type DuplicateCause,
} from './lib/dedup-metrics.service';
export {
  DedupConfigError,
  DedupError,
  DuplicateInFlightError,
  InvalidIdempotencyKeyError,
  MissingIdempotencyKeyError,
  PayloadMismatchError,
  RecordInFlightError,
  RetryAfterError,
  StaleClaimError,
  StoreUnavailableError,
} from './lib/dedup.errors';
export { retryLater } from './lib/retry-later';
export type {
  Claim,
  ClaimOptions,
  ClaimOutcome,
  DedupStoreMode,
  IdempotencyContext,
  IdempotencyRecord,
  ListPage,
  ListQuery,
  MissingKeyPolicy,
  OnStoreDown,
  PayloadMismatchPolicy,
  RecordState,
  RunOptions,
} from './lib/dedup.types';
export { InvalidListCursorError } from './lib/list-cursor';
export {
  assertValidIdempotencyKey,
  defaultIdempotencyKey,
  storageKeyFor,
  validateIdempotencyKey,
  validateIdempotencyScope,
  validateListPrefix,
  type IdempotencyKeyFn,
} from './lib/idempotency-key.extractor';
export {
  DEAD_LETTER_ATTRIBUTES,
  DEDUP_OPTIONS,
  DEFAULT_SCOPE,
  MAX_KEY_BYTES,
  MAX_SCOPE_BYTES,
} from './lib/dedup.constants';
export type {
  DedupModuleAsyncOptions,
  DedupModuleOptions,
  ResolvedDedupOptions,
  DedupCommonOptions,
  DedupSqsOptions,
  DedupRedisOptions,
  DedupPostgresOptions,
  DedupRedisStoreOptions,
  DedupPostgresStoreOptions,
  DedupLayeredStoreOptions,
  DedupModuleExtras,
  DedupOptionsFactory,
} from './lib/dedup.options';
