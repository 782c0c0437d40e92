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
import type Redis from 'ioredis';
import { DataSource } from 'typeorm';
import { REDIS_CLIENT } from '../redis/redis.module';
import { awsClientConfig, createSqsClient, resolveQueueUrl } from '../sqs/sqs-client.factory';
import { HealthDependency, OPS_OPTIONS, OpsOptions } from './ops.options';

const MAX_HEALTH_MESSAGE = 300;

/** Probes the app's dependencies through @nestjs/terminus; error messages in the answer are redacted. */
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
    return this.health.check(this.options.dependencies.map((dependency) => () => this.probe(dependency)));
  }

  private async probe(dependency: HealthDependency): Promise<HealthIndicatorResult> {
    const session = this.indicators.check(dependency);
    const timeoutMs = this.options.probeTimeoutMs ?? 3000;
    let timer: NodeJS.Timeout | undefined;
    // The abort closes the probe's request at the timeout instead of leaving it open behind the race.
    const abort = new AbortController();
    try {
      await Promise.race([
        this.ping(dependency, abort.signal),
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
