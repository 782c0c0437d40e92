import { InFlightTracker } from './in-flight.tracker';

describe('InFlightTracker', () => {
  it('drains once every tracked task settles, including failed ones', async () => {
    const tracker = new InFlightTracker();
    let finish!: () => void;
    let fail!: (error: Error) => void;
    const ok = tracker.track(() => new Promise<void>((resolve) => (finish = resolve)));
    const bad = tracker.track(() => new Promise<void>((_, reject) => (fail = reject)));
    expect(tracker.size).toBe(2);

    let drained: boolean | undefined;
    const drain = tracker.drain(10_000).then((result) => (drained = result));
    finish();
    await ok;
    expect(drained).toBeUndefined();
    fail(new Error('boom'));
    await expect(bad).rejects.toThrow('boom');
    await drain;
    expect(drained).toBe(true);
    expect(tracker.size).toBe(0);
  });

  it('gives up after the timeout and reports it', async () => {
    const tracker = new InFlightTracker();
    void tracker.track(() => new Promise(() => undefined));
    await expect(tracker.drain(20)).resolves.toBe(false);
    expect(tracker.size).toBe(1);
  });

  it('resolves at once when idle', async () => {
    await expect(new InFlightTracker().drain(1)).resolves.toBe(true);
  });
});
