import type { Claim, IdempotencyContext } from '../dedup.types';

/**
 * The context of one run. Its AbortSignal is created only if someone reads it or the lease is
 * lost: an AbortController per message is measurable on the hot path.
 */
export class RunContext implements IdempotencyContext {
  private controller?: AbortController;

  constructor(
    readonly claims: readonly Claim[],
    readonly manager?: IdempotencyContext['manager'],
  ) {}

  get signal(): AbortSignal {
    this.controller ??= new AbortController();
    return this.controller.signal;
  }

  lose(reason: Error): void {
    if (!this.signal.aborted) this.controller?.abort(reason);
  }
}
