import { Injectable } from '@nestjs/common';

/** Counts work in flight so shutdown can wait for it to finish. */
@Injectable()
export class InFlightTracker {
  private count = 0;
  private waiters: Array<() => void> = [];

  get size(): number {
    return this.count;
  }

  async track<T>(work: () => Promise<T>): Promise<T> {
    this.count++;
    try {
      return await work();
    } finally {
      this.count--;
      if (this.count === 0) this.waiters.splice(0).forEach((wake) => wake());
    }
  }

  /** Resolves `true` when nothing is in flight, or `false` after `timeoutMs`. */
  async drain(timeoutMs: number): Promise<boolean> {
    if (this.count === 0) return true;
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }
}
