import { LeaseHeartbeat } from './lease.heartbeat';

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
