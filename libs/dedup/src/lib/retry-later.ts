/** Messages a batch handler asked to try again later, with how long to wait (ms). */
const requested = new WeakMap<object, number>();

/**
 * In an SQS batch handler under `@Idempotent`: asks for `message` (one of the messages the handler
 * was given) to be tried again after `retryAfterMs`, as throwing `RetryAfterError` does in a single
 * handler. Leave it out of the returned acknowledgement list: its claim is released and it is
 * deferred by a delayed copy (counted against `maxRetryDeferrals`) where receives could
 * dead-letter it, else by a visibility change. A message the handler acknowledges anyway is
 * acknowledged.
 */
export function retryLater(message: object, retryAfterMs: number): void {
  if (!Number.isFinite(retryAfterMs) || retryAfterMs < 0)
    throw new RangeError(`retryAfterMs must be a finite number of milliseconds >= 0 (got ${retryAfterMs})`);
  requested.set(message, retryAfterMs);
}

/** The wait `retryLater` asked for `message`, forgetting it; undefined when none was asked. */
export function takeRetryLater(message: object): number | undefined {
  const wait = requested.get(message);
  requested.delete(message);
  return wait;
}
