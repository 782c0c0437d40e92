import type { Logger } from '@nestjs/common';
import { StaleClaimError } from '../dedup.errors';
import type { DedupMetrics } from '../dedup-metrics.service';
import type { Claim } from '../dedup.types';
import { runInIdempotencyContext } from '../idempotency.context';
import { LeaseDeadline } from '../lease.heartbeat';
import { claimFields } from './claim.recorder';
import type {
  ClaimLifecycle,
  ExecHooks,
  ExecOutcome,
  ExecUnit,
  ResolvedRunOptions,
  Work,
  WorkResult,
} from './engine.types';
import { keepLease } from './lease.keeper';
import { RunContext } from './run.context';

/** How long before the local lease deadline the owner gives up: a fifth of the lease, at most 1 s. */
const leaseMargin = (leaseMs: number) => Math.min(1000, Math.floor(leaseMs / 5));

/**
 * Runs work under claims: one claim round trip, the work under a lease heartbeat and a local lease
 * deadline, then complete what was acknowledged and release the rest.
 */
export class ClaimStrategy {
  constructor(
    private readonly lifecycle: ClaimLifecycle,
    private readonly metrics: DedupMetrics,
    private readonly logger: Logger,
  ) {}

  async execute<P>(
    units: readonly ExecUnit<P>[],
    opts: ResolvedRunOptions,
    work: Work<P>,
    hooks: ExecHooks<P>,
  ): Promise<ExecOutcome[]> {
    const claimedAt = Date.now();
    const claimed = await this.lifecycle.claimMany(units, opts);
    const outcomes: ExecOutcome[] = claimed.map((outcome) =>
      outcome.status === 'claimed' ? { status: 'executed' } : outcome,
    );
    const fresh = claimed.flatMap((outcome, i) => (outcome.status === 'claimed' ? [i] : []));
    if (fresh.length === 0) return outcomes;

    const claims = fresh.map((i) => (claimed[i] as { claim: Claim }).claim);
    const payloads = fresh.map((i) => (units[i] as ExecUnit<P>).payload);
    const context = new RunContext(claims);
    const deadline = new LeaseDeadline(claimedAt, opts.leaseMs, leaseMargin(opts.leaseMs), () => {
      const [first] = claims;
      for (const claim of claims) {
        this.metrics.increment('lease-expired', { scope: claim.scope });
        this.logger.warn({ msg: 'lease about to lapse: extensions failed', ...claimFields(claim) });
      }
      if (first) context.lose(new StaleClaimError(first.scope, first.key, first.messageId));
    });
    const heartbeat = keepLease(
      {
        leaseMs: opts.leaseMs,
        claims,
        context,
        extend: (held) => this.lifecycle.extendMany(held),
        after: () => (hooks.onHeartbeat ? hooks.onHeartbeat(payloads) : Promise.resolve()),
        deadline,
      },
      this.logger,
    );
    let done: WorkResult;
    try {
      done = await runInIdempotencyContext(context, () => work(payloads, context));
    } catch (error) {
      await heartbeat.stop();
      deadline.stop();
      await this.releaseAfterFailure(claims, error);
      throw error;
    }
    await heartbeat.stop();
    deadline.stop();

    const acked = claims.flatMap((claim, j) =>
      done.acked[j] ? [{ claim, result: opts.storeResult ? done.results?.[j] : undefined, j }] : [],
    );
    let completed: boolean[];
    try {
      completed = await this.lifecycle.completeMany(acked);
    } catch (error) {
      // The effect ran: retrying it would run it twice. The message is acknowledged, and the
      // record is left to its lease; this is an incident for an operator, never a silent re-open.
      for (const { claim } of acked) {
        this.metrics.increment('completion-failed', { scope: claim.scope });
        this.logger.error({
          msg: 'completion failed after the effect ran; the record expires with its lease',
          ...claimFields(claim),
          error: (error as Error)?.message,
        });
      }
      completed = acked.map(() => true);
    }
    const unacked = claims.filter((_, j) => !done.acked[j]);
    if (unacked.length > 0) await this.releaseAfterFailure(unacked, 'not acknowledged');
    const completedByIndex = new Map(acked.map(({ j }, k) => [j, completed[k]]));
    fresh.forEach((unitIndex, j) => {
      outcomes[unitIndex] = {
        status: !done.acked[j] ? 'not-acked' : completedByIndex.get(j) ? 'executed' : 'stale',
      };
    });
    return outcomes;
  }

  /** Releases claims whose work failed or was not acknowledged; a failed release leaves them to their lease. */
  private async releaseAfterFailure(claims: readonly Claim[], why: unknown): Promise<void> {
    try {
      await this.lifecycle.releaseMany(claims);
    } catch (releaseError) {
      this.logger.error({
        msg: 'release failed; the lease will expire',
        error: (releaseError as Error).message,
      });
    }
    for (const claim of claims) {
      this.logger.warn({
        msg: 'claim released',
        ...claimFields(claim),
        reason: typeof why === 'string' ? why : (why as Error)?.name,
      });
    }
  }
}
