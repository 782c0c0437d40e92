import {
  type ChaosReport,
  claimsRedisLine,
  type DeadLetterEvidence,
  deletesAlone,
  formatSeedSummary,
} from './chaos.report';

/** Only the fields the summary reads. */
function report(
  seed: number,
  violations: string[],
  counts: { duplicates?: number; dlq?: number } = {},
): ChaosReport {
  return {
    ok: violations.length === 0,
    violations,
    seed,
    options: { users: 2000 },
    durationMs: 101_234,
    delivery: { duplicates: counts.duplicates ?? 0 },
    silentlyMissing: ['user9@example.com'],
    unknown: { rows: 4 },
    operator: { resent: 2 },
    deadLetters: { digestMessages: counts.dlq ?? 0, jobMessages: 0, found: 7, injected: 7, wellFormed: [] },
  } as unknown as ChaosReport;
}

describe('formatSeedSummary', () => {
  it('prints one row per seed with its counts, PASS or FAIL and the first violation', () => {
    const text = formatSeedSummary([
      { seed: 1, report: report(1, []) },
      {
        seed: 7,
        report: report(7, ['1 well-formed email messages ended in the DLQ', 'second'], {
          dlq: 1,
          duplicates: 3,
        }),
      },
      { seed: 9, error: 'Error: fauxqs did not start\n    at stack', durationMs: 5_000 },
    ]);
    const lines = text.split('\n');
    expect(lines[0]).toBe('Chaos across 3 seeds: 1 PASS, 2 FAIL');
    expect(lines[1]).toMatch(
      /seed +users +duplicates +silent losses +DLQ'd well-formed +unknown +resent +malformed in DLQ +wall time +result/,
    );
    expect(lines[2]).toMatch(/^ {2}1 +2,000 +0 +1 +0 +4 +2 +7\/7 +101\.2 s +PASS$/);
    expect(lines[3]).toMatch(
      /^ {2}7 +2,000 +3 +1 +1 +4 +2 +7\/7 +101\.2 s +FAIL \(2\): 1 well-formed email messages ended in the DLQ$/,
    );
    expect(lines[4]).toMatch(/^ {2}9 .*5\.0 s +FAIL: harness error: Error: fauxqs did not start$/);
    expect(lines[5]).toContain('npm run chaos -- --seed 7');
  });

  it('says nothing about replaying when every seed passed', () => {
    const text = formatSeedSummary([{ seed: 3, report: report(3, []) }]);
    expect(text).toContain('1 PASS, 0 FAIL');
    expect(text).not.toContain('Replay');
  });
});

describe('deletesAlone', () => {
  const letter = (over: Partial<DeadLetterEvidence>): DeadLetterEvidence =>
    ({ queue: 'send-email', delivered: true, onlyFailedDeletes: true, ...over }) as DeadLetterEvidence;

  it('counts only delivered email dead letters whose every receive ended in a failed delete', () => {
    expect(
      deletesAlone({
        wellFormed: [
          letter({}),
          letter({ delivered: false }),
          letter({ onlyFailedDeletes: false }),
          letter({ queue: 'jobs' }),
        ],
      }),
    ).toBe(1);
    expect(deletesAlone({ wellFormed: [] })).toBe(0);
  });
});

describe('claimsRedisLine', () => {
  it('says which Redis held the claims', () => {
    expect(claimsRedisLine('redis://127.0.0.1:6400')).toBe(
      "dedup claims on the run's redis-server (REDIS_URL redis://127.0.0.1:6400), restarts included",
    );
    expect(
      claimsRedisLine('redis://127.0.0.1:6400', ['127.0.0.1:7001', '127.0.0.1:7002', '127.0.0.1:7003']),
    ).toBe(
      'dedup claims on a Redis Cluster of 3 masters (DEDUP_REDIS_CLUSTER_NODES=127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003); REDIS_URL redis://127.0.0.1:6400 keeps the rate limiter and the restarts',
    );
  });
});
