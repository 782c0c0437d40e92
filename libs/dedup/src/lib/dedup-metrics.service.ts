import { Injectable, Logger } from '@nestjs/common';

/** Every counter DedupMetrics keeps. */
export const DEDUP_COUNTERS = [
  'claimed',
  'completed',
  'duplicate-completed',
  'duplicate-in-flight',
  'released',
  'lease-extended',
  'stale-token',
  'store-down',
  'missing-key',
  'result-not-stored',
  'completion-failed',
  'lease-expired',
  'payload-mismatch',
] as const;

export type DedupCounter = (typeof DEDUP_COUNTERS)[number];

/**
 * Why an SQS message was turned away as a duplicate: `redelivery` when SQS delivered the same
 * message again (its `ApproximateReceiveCount` is above 1, or its MessageId is the one the record
 * was made by), `producer-duplicate` when it is another message carrying a key already taken.
 */
export type DuplicateCause = 'redelivery' | 'producer-duplicate';

/** One increment, as given to listeners (e.g. to feed a Prometheus counter labelled by scope and store). */
export interface DedupMetricEvent {
  readonly counter: DedupCounter;
  readonly by: number;
  readonly scope?: string;
  readonly store?: 'redis' | 'postgres';
  /**
   * Set on `duplicate-completed` and `duplicate-in-flight` of SQS messages (in-batch duplicates
   * included) when the cause is known; absent for plain `IdempotencyService` calls.
   */
  readonly cause?: DuplicateCause;
  /** The SQS MessageId of the duplicate, with `cause`. One value per message: keep it out of metric labels. */
  readonly messageId?: string;
}

export type DedupMetricsListener = (event: DedupMetricEvent) => void;

export type DedupMetricsSnapshot = Record<DedupCounter, number>;

type Labels = Omit<DedupMetricEvent, 'counter' | 'by'>;

/** Process-wide dedup counters, with a snapshot and listeners for exporters. */
@Injectable()
export class DedupMetrics {
  private readonly logger = new Logger('DedupMetrics');
  private readonly counts = new Map<DedupCounter, number>(DEDUP_COUNTERS.map((counter) => [counter, 0]));
  private readonly listeners = new Set<DedupMetricsListener>();
  private readonly failing = new WeakSet<DedupMetricsListener>();

  /** Adds `by` to a counter and tells every listener. A throwing listener is logged (once), never propagated. */
  increment(counter: DedupCounter, labels: Labels = {}, by = 1): void {
    if (by <= 0) return;
    this.counts.set(counter, (this.counts.get(counter) ?? 0) + by);
    for (const listener of this.listeners) {
      try {
        listener({ counter, by, ...labels });
      } catch (error) {
        if (this.failing.has(listener)) continue;
        this.failing.add(listener);
        this.logger.warn({ msg: 'dedup metrics listener failed', counter, error: (error as Error).name });
      }
    }
  }

  /** Current totals of every counter. */
  snapshot(): DedupMetricsSnapshot {
    return Object.fromEntries(this.counts) as DedupMetricsSnapshot;
  }

  /** Subscribes to increments; returns the unsubscribe function. */
  addListener(listener: DedupMetricsListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Whether anyone listens (labels that cost a read are only worth computing then). */
  get listening(): boolean {
    return this.listeners.size > 0;
  }
}
