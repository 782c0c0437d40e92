import { AsyncLocalStorage } from 'node:async_hooks';
import type Redis from 'ioredis';

/** What a send made inside {@link withLocalRateFallback} may use when the shared limiter's Redis fails. */
export interface LocalFallbackBudget {
  /** Sends allowed per window in this process while Redis is unavailable. */
  limit: number;
  windowMs: number;
}

/** How the shared limiter treats the sends of the current async context. */
interface SendPolicy {
  fallback?: LocalFallbackBudget;
  /** False: the per-recipient cap neither applies to nor counts these sends (the global rate does). */
  recipientCap?: boolean;
}

const context = new AsyncLocalStorage<SendPolicy>();

/**
 * Runs `fn` so that sends it makes may fall back to an in-process budget (spaced at the global send
 * rate, at most `budget.limit` per window per process) when Redis cannot be reached, instead of
 * failing. For mail that must go out when Redis is the thing that broke: admin error reports.
 */
export function withLocalRateFallback<T>(budget: LocalFallbackBudget, fn: () => Promise<T>): Promise<T> {
  return context.run({ ...context.getStore(), fallback: budget }, fn);
}

/**
 * Runs `fn` so that its sends skip the per-recipient cap: they are neither refused by it nor
 * counted in it (the global send rate still paces them). Module-internal, for admin error mail,
 * which has a budget of its own; not exported from the package.
 */
export function withoutRecipientCap<T>(fn: () => Promise<T>): Promise<T> {
  return context.run({ ...context.getStore(), recipientCap: false }, fn);
}

/** The fallback budget of the current async context, if any. */
export function currentLocalFallback(): LocalFallbackBudget | undefined {
  return context.getStore()?.fallback;
}

/** Whether the per-recipient cap applies to sends of the current async context. */
export function recipientCapApplies(): boolean {
  return context.getStore()?.recipientCap !== false;
}

/** Longest a limiter or throttle call waits for Redis before it counts as unavailable. */
export const REDIS_CALL_TIMEOUT_MS = 2_000;

/**
 * Runs a Redis call that has a fallback (rate limits, throttles): fails at once while the client
 * has lost its connection (ioredis `reconnecting`, `close`, `end`: queued commands would wait for
 * the reconnect), and after `timeoutMs` (default {@link REDIS_CALL_TIMEOUT_MS}) otherwise.
 */
export function redisCall<T>(
  redis: Pick<Redis, 'status'>,
  call: () => Promise<T>,
  timeoutMs = REDIS_CALL_TIMEOUT_MS,
): Promise<T> {
  if (redis.status === 'reconnecting' || redis.status === 'close' || redis.status === 'end') {
    return Promise.reject(new Error(`Redis is not connected (${redis.status})`));
  }
  return withTimeout(call(), timeoutMs, `Redis did not answer within ${timeoutMs} ms`);
}

/** Rejects with `message` after `ms` unless `promise` settles first. The timer never keeps the process alive. */
export function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
