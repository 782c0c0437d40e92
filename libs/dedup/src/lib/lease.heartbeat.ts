/**
 * Calls `beat` every `intervalMs` until stopped, never two at once. `stop()` waits for a beat in
 * progress, so nothing extends a claim after its owner completed or released it.
 */
export class LeaseHeartbeat {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private stopped = false;

  constructor(
    private readonly intervalMs: number,
    private readonly beat: () => Promise<void>,
    private readonly onError: (error: unknown) => void,
  ) {
    this.schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.beat()
        .catch(this.onError)
        .finally(() => {
          this.running = undefined;
          this.schedule();
        });
    }, this.intervalMs);
    this.timer.unref();
  }
}

/**
 * The owner's own view of its lease: a deadline moved forward only by extensions that succeeded
 * (from the moment each was sent, so a slow reply cannot stretch it). When extensions keep failing
 * (store down or slow), `onLapse` runs `marginMs` before the deadline: the owner stops believing it
 * owns the key before the store could hand it to somebody else.
 */
export class LeaseDeadline {
  private timer?: NodeJS.Timeout;
  private deadline: number;
  private lapsed = false;

  constructor(
    startedAt: number,
    private readonly leaseMs: number,
    private readonly marginMs: number,
    private readonly onLapse: () => void,
  ) {
    this.deadline = startedAt + leaseMs;
    this.arm();
  }

  /** An extension sent at `sentAt` succeeded. */
  renewed(sentAt: number): void {
    if (this.lapsed) return;
    this.deadline = Math.max(this.deadline, sentAt + this.leaseMs);
    this.arm();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.lapsed = true;
  }

  private arm(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(
      () => {
        this.lapsed = true;
        this.onLapse();
      },
      Math.max(0, this.deadline - this.marginMs - Date.now()),
    );
    this.timer.unref();
  }
}
