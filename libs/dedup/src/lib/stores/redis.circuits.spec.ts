import type { Logger } from '@nestjs/common';
import fc from 'fast-check';
import { DedupMetrics } from '../dedup-metrics.service';
import { StoreUnavailableError } from '../dedup.errors';
import { RedisCircuits, SINGLE_NODE } from './redis.circuits';

const seed = Number(process.env.FC_SEED ?? Math.floor(Math.random() * 2 ** 31));
console.log(`redis.circuits.spec: fast-check seed ${seed} (rerun with FC_SEED=${seed})`);

function setup(retryAfterMs = 1000) {
  const logs: { level: string; entry: Record<string, unknown> }[] = [];
  const logger = {
    log: (entry: Record<string, unknown>) => logs.push({ level: 'log', entry }),
    error: (entry: Record<string, unknown>) => logs.push({ level: 'error', entry }),
  } as unknown as Logger;
  const metrics = new DedupMetrics();
  return { circuits: new RedisCircuits(retryAfterMs, metrics, logger), metrics, logs };
}

const isOpen = (circuits: RedisCircuits, node: string) => {
  try {
    circuits.check(node);
    return false;
  } catch (error) {
    expect(error).toBeInstanceOf(StoreUnavailableError);
    return true;
  }
};

describe('RedisCircuits', () => {
  afterEach(() => jest.useRealTimers());

  it('opens only the failed node, names it in the error and the log, and closes on success', () => {
    jest.useFakeTimers({ now: 1_000_000 });
    const { circuits, metrics, logs } = setup();
    const error = circuits.failed('10.0.0.3:7002', new Error('connect ECONNREFUSED'));
    expect(error.message).toContain('node 10.0.0.3:7002: connect ECONNREFUSED');
    expect(isOpen(circuits, '10.0.0.3:7002')).toBe(true);
    expect(isOpen(circuits, '10.0.0.1:7000')).toBe(false);
    expect(isOpen(circuits, SINGLE_NODE)).toBe(false);
    circuits.failed('10.0.0.3:7002', new Error('again'));
    expect(logs.filter((l) => l.entry.msg === 'dedup store down')).toEqual([
      {
        level: 'error',
        entry: {
          msg: 'dedup store down',
          store: 'redis',
          node: '10.0.0.3:7002',
          error: 'connect ECONNREFUSED',
        },
      },
    ]);
    // Two failures and one turned-away call.
    expect(metrics.snapshot()['store-down']).toBe(3);

    jest.advanceTimersByTime(1000); // half-open: the next call goes through
    expect(isOpen(circuits, '10.0.0.3:7002')).toBe(false);
    circuits.succeeded('10.0.0.3:7002');
    circuits.succeeded('10.0.0.3:7002');
    expect(logs.filter((l) => l.entry.msg === 'dedup store recovered')).toHaveLength(1);
  });

  it('a single node logs no node field', () => {
    const { circuits, logs } = setup();
    expect(circuits.failed(SINGLE_NODE, new Error('timeout')).message).toBe(
      'Dedup store redis is unavailable: timeout',
    );
    expect(logs[0]?.entry).toEqual({ msg: 'dedup store down', store: 'redis', error: 'timeout' });
  });

  it('matches a model: a node is open for retryAfterMs after its last failure, until a success', () => {
    const nodes = ['a:1', 'b:2', SINGLE_NODE];
    const op = fc.record({
      node: fc.constantFrom(...nodes),
      kind: fc.constantFrom('fail', 'succeed', 'check'),
      waitMs: fc.integer({ min: 0, max: 700 }),
    });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        jest.useFakeTimers({ now: 5_000_000 });
        const { circuits } = setup(1000);
        const openUntil = new Map<string, number>();
        for (const { node, kind, waitMs } of ops) {
          jest.advanceTimersByTime(waitMs);
          if (kind === 'fail') {
            circuits.failed(node, new Error('down'));
            openUntil.set(node, Date.now() + 1000);
          } else if (kind === 'succeed') {
            circuits.succeeded(node);
            openUntil.delete(node);
          }
          for (const n of nodes) expect(isOpen(circuits, n)).toBe(Date.now() < (openUntil.get(n) ?? 0));
        }
        jest.useRealTimers();
      }),
      { seed, numRuns: 200 },
    );
  });
});
