import type { Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { DedupMetrics } from '../dedup-metrics.service';
import type { Claim } from '../dedup.types';
import { runInIdempotencyContext } from '../idempotency.context';
import type { ClaimTransaction, StoreClaimResult, TransactionalStore } from '../stores/dedup-store.interface';
import { type RetryPolicy, withRetry } from '../stores/store.retry';
import { type ClaimRecorder, claimFields, claimRequest, requestOf } from './claim.recorder';
import type { ExecHooks, ExecOutcome, ExecUnit, ResolvedRunOptions, Work } from './engine.types';
import { keepLease } from './lease.keeper';
import { RunContext } from './run.context';

/** A transaction that failed with a deadlock or serialization failure: 3 attempts in all. */
const TRANSACTION_RETRY: RetryPolicy = { attempts: 3, baseDelayMs: 40, maxDelayMs: 160 };

/**
 * One transaction of a {@link TransactionalStore} for the claims and the business writes: both
 * commit or neither does. A handler that acknowledges only some units has written for all of them
 * in the same transaction, so it is rolled back whole and the acknowledged units run once more,
 * alone, in a fresh one; the rest are released. A deadlock or serialization failure rolls back and
 * retries the whole transaction a bounded number of times.
 */
export class TransactionStrategy {
  constructor(
    private readonly store: TransactionalStore,
    private readonly keyPrefix: string,
    private readonly recorder: ClaimRecorder,
    private readonly metrics: DedupMetrics,
    private readonly logger: Logger,
  ) {}

  async execute<P>(
    units: readonly ExecUnit<P>[],
    opts: ResolvedRunOptions,
    work: Work<P>,
    hooks: ExecHooks<P>,
    rerunAcked = true,
  ): Promise<ExecOutcome[]> {
    const { outcomes, rerun } = await withRetry(
      TRANSACTION_RETRY,
      (error) => {
        const retried = this.store.isRetryable(error);
        if (retried) this.logger.warn({ msg: 'transaction retried', error: (error as Error).message });
        return retried;
      },
      () => this.once(units, opts, work, hooks),
    );
    if (rerun.length === 0 || !rerunAcked) return outcomes;
    // Outside the retries: the re-run has retries of its own, and repeating the whole batch after
    // it started would run the handler (and any effect outside the database) again.
    const again = await this.execute(
      rerun.map((i) => units[i] as ExecUnit<P>),
      opts,
      work,
      hooks,
      false,
    );
    rerun.forEach((i, k) => (outcomes[i] = again[k] as ExecOutcome));
    return outcomes;
  }

  /** One transaction; `rerun` lists the units acknowledged in a partially acknowledged (rolled back) run. */
  private async once<P>(
    units: readonly ExecUnit<P>[],
    opts: ResolvedRunOptions,
    work: Work<P>,
    hooks: ExecHooks<P>,
  ): Promise<{ outcomes: ExecOutcome[]; rerun: number[] }> {
    const token = randomUUID();
    const requests = units.map((unit) => claimRequest(this.keyPrefix, opts.scope, unit));
    const tx = await this.store.begin(requests, token, opts.leaseMs, opts.ttlMs);
    let heartbeat: { stop(): Promise<void> } | undefined;
    const claims: Claim[] = [];
    let working = false;
    try {
      const outcomes: ExecOutcome[] = requests.map((request, i) => {
        const outcome = this.recorder.noteClaim(request, tx.results[i] as StoreClaimResult, token, opts);
        if (outcome.status !== 'claimed') return outcome;
        claims.push(outcome.claim);
        return { status: 'executed' };
      });
      const fresh = requests.flatMap((_, i) => (tx.results[i]?.status === 'claimed' ? [i] : []));
      if (fresh.length === 0) {
        await tx.rollback(false);
        return { outcomes, rerun: [] };
      }

      const payloads = fresh.map((i) => (units[i] as ExecUnit<P>).payload);
      const context = new RunContext(claims, tx.manager);
      heartbeat = keepLease(
        {
          leaseMs: opts.leaseMs,
          claims,
          context,
          extend: (held) => this.renew(tx, held, opts.leaseMs),
          after: () => (hooks.onHeartbeat ? hooks.onHeartbeat(payloads) : Promise.resolve()),
        },
        this.logger,
      );
      working = true;
      const done = await runInIdempotencyContext(context, () => work(payloads, context));
      await heartbeat.stop();

      if (!claims.every((_, j) => done.acked[j])) {
        // Not acknowledged (all or some): the handler's writes cannot be told apart, so none stay.
        await tx.rollback(true);
        working = false;
        for (const claim of claims) {
          this.metrics.increment('released', { scope: claim.scope });
          this.logger.log({ msg: 'transaction rolled back: not acknowledged', ...claimFields(claim) });
        }
        fresh.forEach((unitIndex) => (outcomes[unitIndex] = { status: 'not-acked' }));
        return { outcomes, rerun: fresh.filter((_, j) => done.acked[j]) };
      }

      const stored = claims.map((claim, j) => ({
        ...requestOf(claim),
        token,
        result: opts.storeResult ? this.recorder.serialize(claim, done.results?.[j]) : undefined,
      }));
      await tx.commit(stored);
      working = false;

      for (const item of stored) this.metrics.increment('completed', { scope: item.scope });
      await tx.afterCommit(stored, opts.ttlMs);
      return { outcomes, rerun: [] };
    } catch (error) {
      await heartbeat?.stop();
      await tx.abandon();
      if (working) {
        for (const claim of claims) {
          this.metrics.increment('released', { scope: claim.scope });
          this.logger.warn({
            msg: 'transaction rolled back after failure',
            ...claimFields(claim),
            error: (error as Error)?.name,
          });
        }
      }
      throw error;
    } finally {
      await tx.close();
    }
  }

  /** The row locks need no lease; only a cache layer's is renewed (best effort), and none is ever lost. */
  private async renew(tx: ClaimTransaction, claims: Claim[], leaseMs: number): Promise<boolean[]> {
    const renewed = await tx.renew(
      claims.map((claim) => ({ ...requestOf(claim), token: claim.token })),
      claims[0]?.leaseMs ?? leaseMs,
    );
    renewed?.forEach((ok, i) => ok && this.metrics.increment('lease-extended', { scope: claims[i]?.scope }));
    return claims.map(() => true);
  }
}
