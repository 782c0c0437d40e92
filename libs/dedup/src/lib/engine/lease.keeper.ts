import type { Logger } from '@nestjs/common';
import { StaleClaimError } from '../dedup.errors';
import type { Claim } from '../dedup.types';
import { type LeaseDeadline, LeaseHeartbeat } from '../lease.heartbeat';
import type { RunContext } from './run.context';

/** What {@link keepLease} runs on every beat. */
export interface LeaseKeeping {
  readonly leaseMs: number;
  readonly claims: readonly Claim[];
  readonly context: RunContext;
  /** Extends the claims still held; `false` marks one lost. */
  readonly extend: (held: Claim[]) => Promise<boolean[]>;
  /** Side by side with the extension (the SQS runner extends the messages' visibility). */
  readonly after: () => Promise<void>;
  /** Moved on by every extension that succeeded. */
  readonly deadline?: LeaseDeadline;
}

/**
 * Every `leaseMs / 3` while a claim is held: extends the claims and, side by side, runs `after`.
 * A claim reported lost aborts the context at once and is no longer extended. An extension that
 * failed (store error) or is slow does not hold back `after`: the work goes on until `deadline`
 * says the lease may lapse, and a redelivery meanwhile would only meet an in-flight record.
 */
export function keepLease(keeping: LeaseKeeping, logger: Logger): { stop(): Promise<void> } {
  const { context, deadline } = keeping;
  let held = [...keeping.claims];
  // One extension at a time, but not awaited by the beat: a slow store (retries, a full pool)
  // must not hold back the next visibility extension.
  let extending: Promise<void> | undefined;
  const startExtension = () => {
    const sentAt = Date.now();
    const asked = held;
    extending = keeping
      .extend(asked)
      .then(
        (renewed) => {
          const lost = asked.filter((_, i) => !renewed[i]);
          held = held.filter((claim) => !lost.includes(claim));
          const [firstLost] = lost;
          if (firstLost)
            context.lose(new StaleClaimError(firstLost.scope, firstLost.key, firstLost.messageId));
          else deadline?.renewed(sentAt);
        },
        (error: unknown) => logger.warn({ msg: 'lease extension failed', error: (error as Error).message }),
      )
      .finally(() => (extending = undefined));
  };
  const heartbeat = new LeaseHeartbeat(
    Math.max(50, Math.floor(keeping.leaseMs / 3)),
    async () => {
      if (held.length === 0) return;
      if (!extending) startExtension();
      await keeping.after();
    },
    (error) => logger.warn({ msg: 'lease heartbeat failed', error: (error as Error).message }),
  );
  return {
    // Nothing extends a claim after its owner completed or released it.
    stop: async () => {
      await heartbeat.stop();
      await extending;
    },
  };
}
