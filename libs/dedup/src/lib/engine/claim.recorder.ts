import type { Logger } from '@nestjs/common';
import type { DedupMetrics } from '../dedup-metrics.service';
import type { Claim, ClaimOutcome } from '../dedup.types';
import { storageKeyFor } from '../idempotency-key.extractor';
import type { ClaimRequest, StoreClaimResult } from '../stores/dedup-store.interface';
import type { ResolvedRunOptions } from './engine.types';
import { decodeResult, encodeResult } from './result.codec';

/** The request fields of a claim (what a store needs to recreate its record). */
export const requestOf = (claim: Claim): ClaimRequest => ({
  storageKey: claim.storageKey,
  scope: claim.scope,
  key: claim.key,
  messageId: claim.messageId,
  payloadHash: claim.payloadHash,
});

/** The request of `unit` (a key and what a record made for it keeps) in `scope`. */
export const claimRequest = (
  keyPrefix: string,
  scope: string,
  unit: { readonly key: string; readonly messageId?: string; readonly payloadHash?: string },
): ClaimRequest => ({
  storageKey: storageKeyFor(keyPrefix, scope, unit.key),
  scope,
  key: unit.key,
  messageId: unit.messageId,
  payloadHash: unit.payloadHash,
});

/** Log fields of a claim. */
export const claimFields = (claim: Pick<Claim, 'scope' | 'key' | 'messageId'>) => ({
  scope: claim.scope,
  idempotencyKey: claim.key,
  messageId: claim.messageId,
});

/** Counts and logs what the store answered, and turns it into the public outcome. */
export class ClaimRecorder {
  constructor(
    private readonly metrics: DedupMetrics,
    private readonly logger: Logger,
  ) {}

  noteClaim(
    request: ClaimRequest,
    result: StoreClaimResult,
    token: string,
    opts: ResolvedRunOptions,
  ): ClaimOutcome {
    const fields = { scope: request.scope, idempotencyKey: request.key, messageId: request.messageId };
    if (result.status === 'claimed') {
      this.metrics.increment('claimed', { scope: request.scope });
      return { status: 'claimed', claim: claimOf(request, token, result.fence, opts) };
    }
    const payloadMismatch =
      request.payloadHash !== undefined &&
      result.payloadHash !== undefined &&
      request.payloadHash !== result.payloadHash;
    if (payloadMismatch) {
      this.metrics.increment('payload-mismatch', { scope: request.scope });
      if (opts.onPayloadMismatch !== 'ignore') {
        this.logger.warn({
          msg: 'payload mismatch: the key was used before for a different payload',
          ...fields,
          payloadHash: request.payloadHash,
          recordPayloadHash: result.payloadHash,
          policy: opts.onPayloadMismatch,
        });
      }
    }
    const mismatch = payloadMismatch ? { payloadMismatch } : {};
    if (result.status === 'completed') {
      if (!opts.callerCountsDuplicates)
        this.metrics.increment('duplicate-completed', { scope: request.scope });
      this.logger.log({ msg: 'duplicate skipped', ...fields });
      return { status: 'completed', result: decodeResult(result.result), ...mismatch };
    }
    if (!opts.callerCountsDuplicates) this.metrics.increment('duplicate-in-flight', { scope: request.scope });
    this.logger.log({ msg: 'duplicate in flight', ...fields, retryAfterMs: result.retryAfterMs });
    return { status: 'in-flight', retryAfterMs: result.retryAfterMs, ...mismatch };
  }

  /**
   * JSON of a result to store. A result no store can hold is not stored (counted and logged): the
   * effect has run, so the claim must still complete.
   */
  serialize(claim: Claim, result: unknown): string | undefined {
    if (result === undefined) return undefined;
    const encoded = encodeResult(result);
    if ('text' in encoded) return encoded.text;
    this.notStored(claim, encoded.unstorable);
    return undefined;
  }

  notStored(claim: Pick<Claim, 'scope' | 'key' | 'messageId'>, reason: string): void {
    this.metrics.increment('result-not-stored', { scope: claim.scope });
    this.logger.warn({ msg: 'result not stored', ...claimFields(claim), reason });
  }
}

function claimOf(request: ClaimRequest, token: string, fence: number, opts: ResolvedRunOptions): Claim {
  return {
    storageKey: request.storageKey,
    scope: request.scope,
    key: request.key,
    messageId: request.messageId,
    payloadHash: request.payloadHash,
    token,
    fence,
    leaseMs: opts.leaseMs,
    ttlMs: opts.ttlMs,
  };
}
