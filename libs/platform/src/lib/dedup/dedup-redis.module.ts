import {
  type DynamicModule,
  Inject,
  Injectable,
  Module,
  OnApplicationShutdown,
  type Provider,
} from '@nestjs/common';
import { Cluster, type Redis } from 'ioredis';
import type { RedisClusterNode } from '../config/config.schemas';
import { REDIS_CLIENT } from '../redis/redis.module';
import { logRedisOutages } from '../redis/redis-outage.logger';

/**
 * Injection token of the ioredis client that holds the dedup records: a `Cluster` when
 * DEDUP_REDIS_CLUSTER_NODES is set, else the app's shared REDIS_CLIENT (the same object).
 */
export const DEDUP_REDIS = Symbol('DEDUP_REDIS');

/** What the dedup records live on: {@link DEDUP_REDIS}'s type. */
export type DedupRedis = Redis | Cluster;

/**
 * A Redis Cluster client on `nodes` (seeds: ioredis discovers the rest), named like the shared
 * client, logging one line per outage instead of ioredis' "Unhandled error event" per attempt.
 */
export function createDedupCluster(nodes: readonly RedisClusterNode[], connectionName?: string): Cluster {
  const cluster = new Cluster(
    nodes.map(({ host, port }) => ({ host, port })),
    { redisOptions: { connectionName, maxRetriesPerRequest: 3 } },
  );
  logRedisOutages(cluster, 'DedupRedis', 'dedup redis cluster');
  return cluster;
}

const CLOSE_TIMEOUT_MS = 2000;

@Injectable()
class DedupClusterCloser implements OnApplicationShutdown {
  constructor(@Inject(DEDUP_REDIS) private readonly cluster: Cluster) {}

  async onApplicationShutdown(): Promise<void> {
    if (this.cluster.status === 'end') return;
    // quit() resolves once each node has answered; the client only ends when their sockets close.
    const ended = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, CLOSE_TIMEOUT_MS);
      this.cluster.once('end', () => resolve(clearTimeout(timer)));
    });
    if (this.cluster.status === 'ready') await this.cluster.quit().catch(() => this.cluster.disconnect());
    else this.cluster.disconnect();
    await ended;
  }
}

function dedupRedisProviders(nodes: readonly RedisClusterNode[] | undefined): Provider[] {
  if (!nodes) return [{ provide: DEDUP_REDIS, useExisting: REDIS_CLIENT }];
  return [
    {
      provide: DEDUP_REDIS,
      inject: [REDIS_CLIENT],
      useFactory: (shared: Redis) => createDedupCluster(nodes, shared.options?.connectionName),
    },
    DedupClusterCloser,
  ];
}

/**
 * Global {@link DEDUP_REDIS}: a Cluster of its own on `nodes` (DEDUP_REDIS_CLUSTER_NODES), closed
 * on application shutdown, or, without nodes, the shared REDIS_CLIENT.
 */
@Module({})
export class DedupRedisModule {
  static forRoot(nodes: readonly RedisClusterNode[] | undefined): DynamicModule {
    return {
      module: DedupRedisModule,
      global: true,
      providers: dedupRedisProviders(nodes),
      exports: [DEDUP_REDIS],
    };
  }
}
