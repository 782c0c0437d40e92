import { GetAccountCommand, SESv2Client } from '@aws-sdk/client-sesv2';
import { SQSClient } from '@aws-sdk/client-sqs';
import { Inject, Injectable, OnApplicationShutdown } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import {
  HealthCheckResult,
  HealthCheckService,
  HealthIndicatorResult,
  HealthIndicatorService,
} from '@nestjs/terminus';
import { SecretRedactor } from '@once/mail';
import type { Cluster, Redis } from 'ioredis';
import { DataSource } from 'typeorm';
import { DatabaseConnector } from '../database/database.connector';
import { DEDUP_REDIS, type DedupRedis } from '../dedup/dedup-redis.module';
import { REDIS_CLIENT } from '../redis/redis.module';
import { awsClientConfig, createSqsClient, resolveQueueUrl } from '../sqs/sqs-client.factory';
import { HealthDependency, OPS_OPTIONS, OpsOptions } from './ops.options';

const MAX_HEALTH_MESSAGE = 300;

/** Name of the dedup Redis Cluster's probe (DEDUP_REDIS_CLUSTER_NODES), beside the app's dependencies. */
export const DEDUP_REDIS_HEALTH_KEY = 'dedup-redis';

/** Every master of `cluster` answers PING (a cluster not ready, or without masters, fails). */
async function pingMasters(cluster: Cluster): Promise<void> {
  if (cluster.status !== 'ready') throw new Error(`redis cluster ${cluster.status}`);
  const masters = cluster.nodes('master');
  if (masters.length === 0) throw new Error('redis cluster has no master');
  await Promise.all(masters.map((node) => node.ping()));
}

/**
 * Probes the app's dependencies through @nestjs/terminus, and the dedup Redis Cluster as
 * `dedup-redis` when the app has one; error messages in the answer are redacted.
 */
@Injectable()
export class HealthService implements OnApplicationShutdown {
  private sqs?: SQSClient;
  private ses?: SESv2Client;
  private readonly redactor: SecretRedactor;

  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    private readonly moduleRef: ModuleRef,
    @Inject(OPS_OPTIONS) private readonly options: OpsOptions,
  ) {
    this.redactor = new SecretRedactor({
      secrets: [...(options.secrets ?? [])],
      maxStringLength: MAX_HEALTH_MESSAGE,
    });
  }

  /** Resolves with every probe up, or rejects with a ServiceUnavailableException carrying the result. */
  check(): Promise<HealthCheckResult> {
    const probes = this.options.dependencies.map(
      (dependency) => () => this.probe(dependency, (signal) => this.ping(dependency, signal)),
    );
    const cluster = this.dedupCluster();
    if (cluster) probes.push(() => this.probe(DEDUP_REDIS_HEALTH_KEY, () => pingMasters(cluster)));
    return this.health.check(probes);
  }

  /** The app's background connector, when it boots without waiting for Postgres. */
  private connector(): DatabaseConnector | undefined {
    try {
      return this.moduleRef.get(DatabaseConnector, { strict: false });
    } catch {
      return undefined;
    }
  }

  /** The dedup records' own Redis Cluster, if DEDUP_REDIS is one (else dedup shares REDIS_CLIENT or is off). */
  private dedupCluster(): Cluster | undefined {
    let client: DedupRedis;
    try {
      client = this.moduleRef.get<DedupRedis>(DEDUP_REDIS, { strict: false });
    } catch {
      return undefined;
    }
    return client.isCluster ? (client as Cluster) : undefined;
  }

  private async probe(
    key: string,
    ping: (abortSignal: AbortSignal) => Promise<unknown>,
  ): Promise<HealthIndicatorResult> {
    const session = this.indicators.check(key);
    const timeoutMs = this.options.probeTimeoutMs ?? 3000;
    let timer: NodeJS.Timeout | undefined;
    // The abort closes the probe's request at the timeout instead of leaving it open behind the race.
    const abort = new AbortController();
    try {
      await Promise.race([
        ping(abort.signal),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
      return session.up();
    } catch (error) {
      // Anyone can read /health: a driver's message may carry a URL, a host or a credential.
      const message = error instanceof Error ? error.message : String(error);
      return session.down({ message: this.redactor.redactString(message) });
    } finally {
      clearTimeout(timer);
      abort.abort();
    }
  }

  private async ping(dependency: HealthDependency, abortSignal: AbortSignal): Promise<unknown> {
    switch (dependency) {
      case 'postgres':
        if (this.connector()?.connected === false)
          throw new Error('not connected yet (retrying in the background)');
        return this.moduleRef.get(DataSource, { strict: false }).query('SELECT 1');
      case 'redis':
        return this.moduleRef.get<Redis>(REDIS_CLIENT, { strict: false }).ping();
      case 'sqs':
        this.sqs ??= createSqsClient(this.options.aws);
        return resolveQueueUrl(this.sqs, this.options.probeQueue);
      case 'ses':
        this.ses ??= new SESv2Client({
          ...awsClientConfig(this.options.aws, this.options.aws.SES_ENDPOINT),
          maxAttempts: 1,
        });
        return this.ses.send(new GetAccountCommand({}), { abortSignal });
    }
  }

  onApplicationShutdown(): void {
    this.sqs?.destroy();
    this.ses?.destroy();
  }
}
