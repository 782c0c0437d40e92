import type { Message } from '@aws-sdk/client-sqs';
import { Inject } from '@nestjs/common';
import {
  IDEMPOTENT_RUNNER_PROPERTY,
  IDEMPOTENT_METADATA,
  SQS_CONSUMER_METHOD,
  TRANSACTIONAL_METADATA,
} from './dedup.constants';
import { assertValidScope, type IdempotencyKeyFn } from './idempotency-key.extractor';
import type { PayloadMismatchPolicy } from './dedup.types';
import { IdempotentHandlerRunner, type IdempotentSpec } from './sqs/idempotent-handler.runner';

export interface IdempotentOptions<TMessage = Message> {
  /**
   * Derives the idempotency key. Receives the SQS `Message` for `@SqsMessageHandler` methods
   * (each message of a batch handler), else the method's first argument. Default: the `eventId`
   * field of the JSON body (or of the argument). No key → MissingIdempotencyKeyError.
   */
  key?: IdempotencyKeyFn<TMessage>;
  /**
   * Part of every stored key (`keyPrefix + scope + ':' + key`). Default `ClassName.method`:
   * renaming the class or method then re-runs messages already done, so name it explicitly
   * for anything long-lived. No `:` allowed.
   */
  scope?: string;
  /** Overrides the module's ttlMs for this handler. */
  ttlMs?: number;
  /** Overrides the module's leaseMs for this handler. */
  leaseMs?: number;
  /**
   * Transactional mode (store postgres or redis+postgres): the processed-event row is inserted in
   * a transaction whose EntityManager is passed to the method as an extra last argument (also
   * `currentTransactionManager()`); business writes made through it commit with the row or not at all.
   */
  transactional?: boolean;
  /**
   * The same key arrived with a different body (plain methods: first argument) than the one its
   * record was made for. Overrides the module's `onPayloadMismatch` (`'warn'` by default).
   */
  onPayloadMismatch?: PayloadMismatchPolicy;
}

type AnyMethod = (...args: unknown[]) => unknown;

const metadataOf = <T>(key: symbol, ...functions: object[]): T | undefined => {
  for (const fn of functions) {
    const value = Reflect.getMetadata(key, fn) as T | undefined;
    if (value !== undefined) return value;
  }
  return undefined;
};

/** Copies every reflect-metadata entry `from` has and `to` lacks. */
export function copyMethodMetadata(from: object, to: object): void {
  for (const key of Reflect.getOwnMetadataKeys(from)) {
    if (!Reflect.hasOwnMetadata(key, to)) Reflect.defineMetadata(key, Reflect.getOwnMetadata(key, from), to);
  }
}

const injectedPrototypes = new WeakSet<object>();

/**
 * Makes a method idempotent: a redelivered or duplicated message never repeats its side effect,
 * a failed attempt is retried. Works on `@SqsMessageHandler` methods (single and batch; above or
 * below that decorator) and on plain provider methods.
 *
 * The method is wrapped here, at decoration time, because @ssut/nestjs-sqs binds
 * `prototype[method]` itself (no interceptors run). The wrapper reaches the dedup runner (the
 * module's IdempotentHandlerRunner provider) through a property Nest injects into the instance, so
 * the class must be a provider and `DedupModule.forRoot()` must be imported (it is global).
 *
 * SQS single handler: completed duplicate → returns normally (deleted); in-flight duplicate →
 * DuplicateInFlightError (kept, reappears after the holder's lease); failure → claim released,
 * error rethrown. Batch handler: receives only fresh messages (in-batch duplicates collapsed);
 * the wrapper returns the list of messages to delete.
 */
export function Idempotent<TMessage = Message>(options: IdempotentOptions<TMessage> = {}): MethodDecorator {
  return (target, propertyKey, descriptor) => {
    const original = descriptor.value as unknown;
    if (typeof original !== 'function' || typeof target === 'function') {
      throw new TypeError(`@Idempotent() decorates instance methods only (${String(propertyKey)})`);
    }
    const className = target.constructor.name;
    const scope = options.scope ?? `${className}.${String(propertyKey)}`;
    assertValidScope(scope);
    if (!injectedPrototypes.has(target)) {
      injectedPrototypes.add(target);
      Inject(IdempotentHandlerRunner)(target, IDEMPOTENT_RUNNER_PROPERTY);
    }
    const spec: IdempotentSpec = {
      scope,
      key: options.key as IdempotencyKeyFn<never> | undefined,
      ttlMs: options.ttlMs,
      leaseMs: options.leaseMs,
      transactional: options.transactional,
      onPayloadMismatch: options.onPayloadMismatch,
    };

    const wrapper = function (this: unknown, ...args: unknown[]): Promise<unknown> {
      const runner = (this as Record<symbol, IdempotentHandlerRunner | undefined> | null | undefined)?.[
        IDEMPOTENT_RUNNER_PROPERTY
      ];
      if (!runner) {
        return Promise.reject(
          new Error(
            `@Idempotent ${scope}: IdempotencyService was not injected. Import DedupModule.forRoot() and let Nest create ${className}.`,
          ),
        );
      }
      return runner.invoke({
        spec: {
          ...spec,
          transactional:
            spec.transactional ?? metadataOf<boolean>(TRANSACTIONAL_METADATA, wrapper, original) === true,
        },
        handler: metadataOf(SQS_CONSUMER_METHOD, wrapper, original),
        thisArg: this,
        original: original as AnyMethod,
        args,
      });
    };
    Object.defineProperty(wrapper, 'name', { value: (original as AnyMethod).name });
    // Metadata set before (decorators below this one) moves to the wrapper; metadata set after
    // (decorators above) lands on the wrapper directly. The wrapper reads both at call time.
    copyMethodMetadata(original, wrapper);
    Reflect.defineMetadata(IDEMPOTENT_METADATA, spec, wrapper);
    descriptor.value = wrapper as typeof descriptor.value;
    return descriptor;
  };
}

/** The resolved `@Idempotent` spec of a method, if it has one (for explorers and tests). */
export function getIdempotentMetadata(method: object): Readonly<IdempotentSpec> | undefined {
  return Reflect.getMetadata(IDEMPOTENT_METADATA, method) as IdempotentSpec | undefined;
}
