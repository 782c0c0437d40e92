import { AsyncLocalStorage } from 'node:async_hooks';
import type { EntityManager } from 'typeorm';
import type { IdempotencyContext } from './dedup.types';

const storage = new AsyncLocalStorage<IdempotencyContext>();

/** Runs `fn` with `context` visible to {@link currentIdempotencyContext}. */
export function runInIdempotencyContext<T>(context: IdempotencyContext, fn: () => T): T {
  return storage.run(context, fn);
}

/** The claims (and, in transactional mode, the EntityManager) of the idempotent call in progress. */
export function currentIdempotencyContext(): IdempotencyContext | undefined {
  return storage.getStore();
}

/**
 * The EntityManager of the transactional idempotent call in progress: write through it so the
 * business rows and the processed-event row commit together.
 * @throws Error outside a transactional `@Idempotent` handler or `run(..., { transactional: true })`.
 */
export function currentTransactionManager(): EntityManager {
  const manager = storage.getStore()?.manager;
  if (!manager)
    throw new Error('No idempotent transaction in progress: use @Idempotent({ transactional: true })');
  return manager;
}
