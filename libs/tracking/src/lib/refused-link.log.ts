import { Inject, Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import type { InvalidLinkReason } from './link.verifier';
import { TRACKING_OPTIONS, type ResolvedTrackingOptions } from './tracking.options';

/** Refusals by reason. */
export type RefusalCounts = Partial<Record<InvalidLinkReason, number>>;

/**
 * Logs refused tracking links at a bounded rate, whatever a client sends: the first refusal of each
 * interval (`refusedLinks.logIntervalMs`, default 10 s) is logged in full, with its request's
 * context; the rest of the interval is one summary line at its end (`refused`, `byReason`). So a
 * flood of tampered links writes at most two lines per interval. `totals()` counts every refusal
 * since boot, for metrics.
 */
@Injectable()
export class RefusedLinkLog implements OnModuleDestroy {
  private readonly logger = new Logger('TrackingLinks');
  private readonly intervalMs: number;
  private readonly counts = new Map<InvalidLinkReason, number>();
  private held = new Map<InvalidLinkReason, number>();
  private window: NodeJS.Timeout | undefined;

  constructor(@Inject(TRACKING_OPTIONS) options: ResolvedTrackingOptions) {
    this.intervalMs = options.refusedLinks.logIntervalMs;
  }

  /**
   * Counts a refusal; logs it with `fields` if it is the first of its interval, else holds it for
   * the summary. `fields` may be a function, called only when the line is written.
   */
  refused(
    reason: InvalidLinkReason,
    fields: Record<string, unknown> | (() => Record<string, unknown>) = {},
  ): void {
    this.counts.set(reason, (this.counts.get(reason) ?? 0) + 1);
    if (this.window === undefined) {
      this.window = setTimeout(() => this.summarize(), this.intervalMs);
      this.window.unref();
      this.logger.warn({
        msg: 'Refused tracking link',
        reason,
        ...(typeof fields === 'function' ? fields() : fields),
      });
      return;
    }
    this.held.set(reason, (this.held.get(reason) ?? 0) + 1);
  }

  /** Refusals since boot, by reason. */
  totals(): RefusalCounts {
    return Object.fromEntries(this.counts);
  }

  onModuleDestroy(): void {
    clearTimeout(this.window);
    this.summarize();
  }

  private summarize(): void {
    this.window = undefined;
    if (this.held.size === 0) return;
    const byReason: RefusalCounts = Object.fromEntries(this.held);
    const refused = [...this.held.values()].reduce((sum, n) => sum + n, 0);
    this.held = new Map();
    this.logger.warn({
      msg: 'Refused tracking links, not logged one by one',
      refused,
      byReason,
      intervalMs: this.intervalMs,
    });
  }
}
