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
] as const;

export type DedupCounter = (typeof DEDUP_COUNTERS)[number];

/** One increment, as given to listeners (e.g. to feed a Prometheus counter labelled by scope and store). */
export interface DedupMetricEvent {
  readonly counter: DedupCounter;
  readonly by: number;
  readonly scope?: string;
  readonly store?: 'redis' | 'postgres';
}

export type DedupMetricsListener = (event: DedupMetricEvent) => void;

export type DedupMetricsSnapshot = Record<DedupCounter, number>;

/** Process-wide dedup counters, with a snapshot and listeners for exporters. */
@Injectable()
export class DedupMetrics {
  private readonly logger = new Logger('DedupMetrics');
  private readonly counts = new Map<DedupCounter, number>(DEDUP_COUNTERS.map((counter) => [counter, 0]));
  private readonly listeners = new Set<DedupMetricsListener>();
  private readonly failing = new WeakSet<DedupMetricsListener>();

  /** Adds `by` to a counter and tells every listener. A throwing listener is logged (once), never propagated. */
  increment(counter: DedupCounter, labels: Omit<DedupMetricEvent, 'counter' | 'by'> = {}, by = 1): void {
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
}
