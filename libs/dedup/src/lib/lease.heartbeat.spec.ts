import { LeaseDeadline, LeaseHeartbeat } from './lease.heartbeat';

describe('LeaseHeartbeat', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('beats every interval, reports errors and keeps going, and stops for good', async () => {
    let beats = 0;
    const errors: unknown[] = [];
    const heartbeat = new LeaseHeartbeat(
      100,
      async () => {
        beats += 1;
        if (beats === 2) throw new Error('redis blip');
      },
      (error) => errors.push(error),
    );

    await jest.advanceTimersByTimeAsync(350);
    expect(beats).toBe(3);
    expect(errors).toHaveLength(1);

    await heartbeat.stop();
    await jest.advanceTimersByTimeAsync(1000);
    expect(beats).toBe(3);
  });

  it('stop() waits for a beat in progress', async () => {
    let finished = false;
    const heartbeat = new LeaseHeartbeat(
      10,
      () => new Promise<void>((resolve) => setTimeout(() => ((finished = true), resolve()), 50)),
      () => undefined,
    );
    await jest.advanceTimersByTimeAsync(15);
    const stopped = heartbeat.stop();
    await jest.advanceTimersByTimeAsync(60);
    await stopped;
    expect(finished).toBe(true);
  });
});

describe('LeaseDeadline', () => {
  beforeEach(() => jest.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => jest.useRealTimers());

  it('lapses a margin before the lease ends when nothing renews it', async () => {
    const lapsed: number[] = [];
    new LeaseDeadline(Date.now(), 1000, 200, () => lapsed.push(Date.now()));
    await jest.advanceTimersByTimeAsync(799);
    expect(lapsed).toEqual([]);
    await jest.advanceTimersByTimeAsync(1);
    expect(lapsed).toEqual([1_000_800]);
  });

  it('moves only as far as the send time of a renewal allows, never backwards', async () => {
    const lapsed: number[] = [];
    const deadline = new LeaseDeadline(Date.now(), 1000, 200, () => lapsed.push(Date.now()));
    await jest.advanceTimersByTimeAsync(500);
    deadline.renewed(1_000_300); // sent at +300, answered at +500: the lease runs from +300
    deadline.renewed(1_000_100); // an older renewal answered late does not shorten it
    await jest.advanceTimersByTimeAsync(599);
    expect(lapsed).toEqual([]);
    await jest.advanceTimersByTimeAsync(1);
    expect(lapsed).toEqual([1_001_100]);
  });

  it('never lapses once stopped, and ignores renewals after lapsing', async () => {
    const lapsed: number[] = [];
    const stopped = new LeaseDeadline(Date.now(), 1000, 200, () => lapsed.push(1));
    stopped.stop();
    const late = new LeaseDeadline(Date.now(), 1000, 200, () => lapsed.push(2));
    await jest.advanceTimersByTimeAsync(900);
    late.renewed(Date.now());
    await jest.advanceTimersByTimeAsync(5000);
    expect(lapsed).toEqual([2]);
  });
});
