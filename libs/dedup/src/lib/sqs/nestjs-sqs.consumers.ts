import type { ModuleRef } from '@nestjs/core';
import type * as NestjsSqs from '@ssut/nestjs-sqs';
import type { SqsQueueRef } from './sqs-queue.ref';

/**
 * The @ssut/nestjs-sqs versions whose internals this adapter uses (`SqsService#getQueueInfo`,
 * typed private, and `SqsService#options.consumers`). The contract test fails when the installed
 * version leaves this range or the internals change.
 */
export const SUPPORTED_NESTJS_SQS_RANGE = '>=3.0.1 <4';

const PACKAGE = '@ssut/nestjs-sqs';

/** What this adapter reads of SqsService: present at runtime in the supported range. */
interface SqsServiceInternals {
  getQueueInfo(name: string): SqsQueueRef;
  readonly options?: {
    readonly consumers?: readonly { readonly name: string; readonly messageAttributeNames?: string[] }[];
  };
}

let loaded: typeof NestjsSqs | null | undefined;

/**
 * @ssut/nestjs-sqs, loaded on first use (it is an optional peer dependency: an app that only calls
 * `IdempotencyService.run` never loads it); `undefined` when it is not installed.
 */
export function loadNestjsSqs(): typeof NestjsSqs | undefined {
  if (loaded === undefined) {
    try {
      // An optional peer dependency, loaded on first use.
      loaded = require(PACKAGE) as typeof NestjsSqs;
    } catch (error) {
      const missing =
        (error as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND' &&
        (error as Error).message.includes(`'${PACKAGE}'`);
      if (!missing) throw error;
      loaded = null;
    }
  }
  return loaded ?? undefined;
}

/**
 * The consumers an app registered with @ssut/nestjs-sqs, by name: the one place that reads the
 * package's internals. SqsService is found lazily (after the app's modules are up); without the
 * package or an SqsModule every consumer is unknown.
 */
export class NestjsSqsConsumers {
  private service?: SqsServiceInternals;

  constructor(private readonly moduleRef: Pick<ModuleRef, 'get'>) {}

  /** The consumer's own client and queue URL, or `undefined` when there is no such consumer. */
  queueOf(consumer: string): SqsQueueRef | undefined {
    try {
      const { sqs, queueUrl } = this.sqsService()?.getQueueInfo(consumer) ?? {};
      return sqs && queueUrl ? { sqs, queueUrl } : undefined;
    } catch {
      return undefined;
    }
  }

  /** The consumer receives every message attribute (`messageAttributeNames: ['All']` or `['.*']`). */
  receivesAllAttributes(consumer: string): boolean {
    let names: readonly string[] | undefined;
    try {
      names = this.sqsService()?.options?.consumers?.find((c) => c.name === consumer)?.messageAttributeNames;
    } catch {
      return false;
    }
    return !!names?.some((name) => name === 'All' || name === '.*');
  }

  private sqsService(): SqsServiceInternals | undefined {
    if (!this.service) {
      const nestjsSqs = loadNestjsSqs();
      if (!nestjsSqs) return undefined;
      this.service = this.moduleRef.get(nestjsSqs.SqsService, {
        strict: false,
      }) as unknown as SqsServiceInternals;
    }
    return this.service;
  }
}
