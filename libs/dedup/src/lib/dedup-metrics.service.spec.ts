import { Logger } from '@nestjs/common';
import { DEDUP_COUNTERS, DedupMetrics, type DedupMetricEvent } from './dedup-metrics.service';

describe('DedupMetrics', () => {
  beforeAll(() => Logger.overrideLogger(false));

  it('counts, snapshots and tells listeners; a throwing listener does not break counting', () => {
    const metrics = new DedupMetrics();
    const events: DedupMetricEvent[] = [];
    metrics.addListener(() => {
      throw new Error('exporter down');
    });
    const unsubscribe = metrics.addListener((event) => events.push(event));

    metrics.increment('claimed', { scope: 'Jobs.handle' });
    metrics.increment('store-down', { store: 'redis' }, 2);
    unsubscribe();
    metrics.increment('claimed');

    expect(Object.keys(metrics.snapshot()).sort()).toEqual([...DEDUP_COUNTERS].sort());
    expect(metrics.snapshot()).toMatchObject({ claimed: 2, 'store-down': 2, released: 0 });
    expect(events).toEqual([
      { counter: 'claimed', by: 1, scope: 'Jobs.handle' },
      { counter: 'store-down', by: 2, store: 'redis' },
    ]);
  });
});

describe('DedupMetrics.holdDuplicates', () => {
  it('holds duplicate increments without a cause, passes the rest, and counts what it held if the work throws', async () => {
    const metrics = new DedupMetrics();
    const events: DedupMetricEvent[] = [];
    metrics.addListener((event) => events.push(event));

    const { value, held } = await metrics.holdDuplicates(async () => {
      metrics.increment('duplicate-completed', { scope: 's' });
      metrics.increment('duplicate-in-flight', { scope: 's', cause: 'redelivery' });
      metrics.increment('claimed', { scope: 's' });
      metrics.unheld(() => metrics.increment('duplicate-completed', { scope: 'nested' }));
      return 42;
    });
    expect(value).toBe(42);
    expect(held).toEqual([{ counter: 'duplicate-completed', labels: { scope: 's' }, by: 1 }]);
    expect(events.map((event) => `${event.counter}:${event.scope}`)).toEqual([
      'duplicate-in-flight:s',
      'claimed:s',
      'duplicate-completed:nested',
    ]);

    events.length = 0;
    await expect(
      metrics.holdDuplicates(async () => {
        metrics.increment('duplicate-completed', { scope: 't' });
        throw new Error('store down');
      }),
    ).rejects.toThrow('store down');
    expect(events).toEqual([{ counter: 'duplicate-completed', by: 1, scope: 't' }]);
    expect(metrics.snapshot()['duplicate-completed']).toBe(2);
  });
});
