/** Bounds of a retried store write. */
export interface RetryPolicy {
  /** Total attempts, the first included. */
  readonly attempts: number;
  /** Delay before the second attempt; doubled each time, half of it jittered. */
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Runs `operation` until it succeeds, `retryable(error)` is false, or the attempts are spent; then
 * rethrows the last error. Exponential backoff, half of each delay random (so workers that failed
 * together do not retry together, yet a short blip is still waited out). Hand-written: no retry library is installed, and this is ten lines with
 * no timers on the success path.
 */
export async function withRetry<T>(
  policy: RetryPolicy,
  retryable: (error: unknown) => boolean,
  operation: (attempt: number) => Promise<T>,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation(attempt);
    } catch (error) {
      if (attempt >= policy.attempts || !retryable(error)) throw error;
      const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
      await sleep(cap / 2 + (Math.random() * cap) / 2);
    }
  }
}
