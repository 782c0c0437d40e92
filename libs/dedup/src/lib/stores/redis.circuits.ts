import type { Logger } from '@nestjs/common';
import { StoreUnavailableError } from '../dedup.errors';
import type { DedupMetrics } from '../dedup-metrics.service';

/** The circuit of a single Redis (or of a cluster node not known yet). */
export const SINGLE_NODE = '';

/**
 * The Redis store's circuit breakers, one per node ("host:port" of the master serving a slot on a
 * cluster, {@link SINGLE_NODE} otherwise). A failure opens the node's circuit for `retryAfterMs`,
 * during which calls to that node fail fast (each counted as `store-down`); any success closes it.
 * A dead master thus turns away only the keys of its slots, and the other masters keep serving.
 */
export class RedisCircuits {
  /** Nodes whose circuit opened, and until when it stays open. */
  private readonly openUntil = new Map<string, number>();

  constructor(
    private readonly retryAfterMs: number,
    private readonly metrics: DedupMetrics,
    private readonly logger: Logger,
  ) {}

  /** Throws (and counts) when `node`'s circuit is open. */
  check(node: string): void {
    const until = this.openUntil.get(node);
    if (until === undefined || Date.now() >= until) return;
    this.metrics.increment('store-down', { store: 'redis' });
    throw new StoreUnavailableError('redis', `${where(node)}failed recently, not retried yet`);
  }

  succeeded(node: string): void {
    if (!this.openUntil.delete(node)) return;
    this.logger.log({ msg: 'dedup store recovered', store: 'redis', ...nodeField(node) });
  }

  /** Opens `node`'s circuit; the error to throw. */
  failed(node: string, error: Error): StoreUnavailableError {
    const wasOpen = this.openUntil.has(node);
    this.openUntil.set(node, Date.now() + this.retryAfterMs);
    this.metrics.increment('store-down', { store: 'redis' });
    if (!wasOpen)
      this.logger.error({
        msg: 'dedup store down',
        store: 'redis',
        ...nodeField(node),
        error: error.message,
      });
    return new StoreUnavailableError('redis', `${where(node)}${error.message}`, { cause: error });
  }
}

const nodeField = (node: string) => (node === SINGLE_NODE ? {} : { node });
const where = (node: string) => (node === SINGLE_NODE ? '' : `node ${node}: `);
