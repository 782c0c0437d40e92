import { Inject, Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { DedupMetrics, type DedupMetricEvent } from '@once/dedup';
import type Redis from 'ioredis';
import { REDIS_CLIENT } from '../redis/redis.module';

/** Where DedupStatsService keeps its counters. */
export interface DedupStatsOptions {
  /** `${REDIS_KEY_PREFIX}stats:dedup:`, shared by every app of an environment. */
  readonly keyPrefix: string;
}

export const DEDUP_STATS_OPTIONS = Symbol('DEDUP_STATS_OPTIONS');

/** Key prefix of the shared duplicate counters. */
export const dedupStatsKeyPrefix = (config: { REDIS_KEY_PREFIX: string }): string =>
  `${config.REDIS_KEY_PREFIX}stats:dedup:`;

/** Duplicates of one kind by cause; `unknown` when the cause could not be told (plain calls). */
export interface DuplicateCauseCounts {
  redelivery: number;
  producerDuplicate: number;
  unknown: number;
  total: number;
}

/** Duplicates turned away in one dedup scope, since the counters were created. */
export interface ScopeDuplicateStats {
  scope: string;
  /** Duplicates of a completed key: dropped for good. */
  suppressed: DuplicateCauseCounts;
  /** Duplicates of a key in flight: put back until the holder's lease ends, then counted again. */
  deferred: DuplicateCauseCounts;
  /** Deliveries whose key was used before for a different payload (see `onPayloadMismatch`). */
  payloadMismatches: number;
}

const PAYLOAD_MISMATCH = 'payload-mismatch';

const KINDS = new Map<string, 'suppressed' | 'deferred'>([
  ['duplicate-completed', 'suppressed'],
  ['duplicate-in-flight', 'deferred'],
]);
const CAUSES = new Map<string, 'redelivery' | 'producerDuplicate' | 'unknown'>([
  ['redelivery', 'redelivery'],
  ['producer-duplicate', 'producerDuplicate'],
  ['unknown', 'unknown'],
]);

const emptyCounts = (): DuplicateCauseCounts => ({
  redelivery: 0,
  producerDuplicate: 0,
  unknown: 0,
  total: 0,
});

/**
 * Duplicate counts shared by every process: each `duplicate-completed` / `duplicate-in-flight`
 * event of DedupMetrics is added to a Redis hash per scope (`<keyPrefix>duplicates:<scope>`,
 * field `<counter>:<cause>`), without waiting and without ever failing the handler; the scopes
 * seen are kept in the set `<keyPrefix>scopes`. `duplicates()` reads them back.
 */
@Injectable()
export class DedupStatsService implements OnModuleDestroy {
  private readonly logger = new Logger(DedupStatsService.name);
  private readonly unsubscribe: () => void;
  private failing = false;

  constructor(
    @Inject(REDIS_CLIENT) private readonly redis: Redis,
    @Inject(DEDUP_STATS_OPTIONS) private readonly options: DedupStatsOptions,
    metrics: DedupMetrics,
  ) {
    this.unsubscribe = metrics.addListener((event) => this.record(event));
  }

  onModuleDestroy(): void {
    this.unsubscribe();
  }

  /** Adds a duplicate or payload-mismatch event to the shared counters in the background; other events are ignored. */
  record(event: DedupMetricEvent): void {
    if ((!KINDS.has(event.counter) && event.counter !== PAYLOAD_MISMATCH) || !event.scope) return;
    const field =
      event.counter === PAYLOAD_MISMATCH ? PAYLOAD_MISMATCH : `${event.counter}:${event.cause ?? 'unknown'}`;
    Promise.all([
      this.redis.sadd(this.scopesKey(), event.scope),
      this.redis.hincrby(this.scopeKey(event.scope), field, event.by),
    ]).then(
      () => {
        this.failing = false;
      },
      (error: unknown) => {
        if (this.failing) return;
        this.failing = true;
        // Logged once per outage: every duplicate would otherwise log the same failure.
        this.logger.warn({
          msg: 'duplicate stats not recorded',
          scope: event.scope,
          messageId: event.messageId,
          error: (error as Error).message,
        });
      },
    );
  }

  /** Duplicates per scope (sorted by scope), as counted by every process since the counters began. */
  async duplicates(): Promise<ScopeDuplicateStats[]> {
    const scopes = (await this.redis.smembers(this.scopesKey())).sort();
    const hashes = await Promise.all(scopes.map((scope) => this.redis.hgetall(this.scopeKey(scope))));
    return scopes.map((scope, i) => {
      const stats: ScopeDuplicateStats = {
        scope,
        suppressed: emptyCounts(),
        deferred: emptyCounts(),
        payloadMismatches: 0,
      };
      for (const [field, raw] of Object.entries(hashes[i] ?? {})) {
        if (field === PAYLOAD_MISMATCH) {
          stats.payloadMismatches += Number(raw) || 0;
          continue;
        }
        const separator = field.indexOf(':');
        const kind = KINDS.get(field.slice(0, separator));
        const cause = CAUSES.get(field.slice(separator + 1));
        const count = Number(raw);
        if (!kind || !cause || !Number.isFinite(count)) continue;
        stats[kind][cause] += count;
        stats[kind].total += count;
      }
      return stats;
    });
  }

  private scopesKey(): string {
    return `${this.options.keyPrefix}scopes`;
  }

  private scopeKey(scope: string): string {
    return `${this.options.keyPrefix}duplicates:${scope}`;
  }
}
