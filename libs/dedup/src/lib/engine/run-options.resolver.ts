import { DEFAULT_SCOPE } from '../dedup.constants';
import { DedupConfigError } from '../dedup.errors';
import type { RunOptions } from '../dedup.types';
import { assertValidScope } from '../idempotency-key.extractor';
import type { ResolvedRunOptions } from './engine.types';
import type { RunDefaults } from './dedup.settings';

/** Longest lease: SQS' longest visibility timeout (12 h), well inside a timer's 2^31-1 ms. */
export const MAX_LEASE_MS = 12 * 3600_000;
/** Longest ttl: ten years. */
export const MAX_TTL_MS = 10 * 365 * 24 * 3600_000;

/**
 * Applies the module defaults to per-call options and checks them.
 * @throws TypeError for a scope, leaseMs or ttlMs out of bounds.
 * @throws DedupConfigError for transactional mode on a store without transactions.
 */
export function resolveRunOptions(
  options: RunOptions,
  defaults: RunDefaults,
  storeHasTransactions: boolean,
): ResolvedRunOptions {
  const scope = options.scope ?? DEFAULT_SCOPE;
  assertValidScope(scope);
  const leaseMs = options.leaseMs ?? defaults.leaseMs;
  const ttlMs = options.ttlMs ?? defaults.ttlMs;
  if (!Number.isInteger(leaseMs) || leaseMs < 100 || leaseMs > MAX_LEASE_MS)
    throw new TypeError(`leaseMs must be an integer from 100 to ${MAX_LEASE_MS}`);
  if (!Number.isInteger(ttlMs) || ttlMs < leaseMs || ttlMs > MAX_TTL_MS)
    throw new TypeError(`ttlMs must be an integer from leaseMs to ${MAX_TTL_MS}`);
  if (options.transactional && !storeHasTransactions) {
    throw new DedupConfigError([
      `transactional mode needs store "postgres" or "redis+postgres", not "${defaults.storeMode}"`,
    ]);
  }
  return {
    scope,
    leaseMs,
    ttlMs,
    transactional: options.transactional ?? false,
    storeResult: options.storeResult ?? true,
    onPayloadMismatch: options.onPayloadMismatch ?? defaults.onPayloadMismatch,
    // Survives when a caller hands resolved options back (the claim strategy, through claimMany).
    callerCountsDuplicates: (options as Partial<ResolvedRunOptions>).callerCountsDuplicates,
  };
}
