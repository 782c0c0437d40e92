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
