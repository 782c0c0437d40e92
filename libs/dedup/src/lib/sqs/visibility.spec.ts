import fc from 'fast-check';
import {
  clampDelaySeconds,
  clampVisibilitySeconds,
  MAX_DELAY_SECONDS,
  MAX_VISIBILITY_SECONDS,
} from './visibility';

describe('visibility clamps', () => {
  it('round up to whole seconds and stay within what SQS accepts', () => {
    expect(clampVisibilitySeconds(12.1)).toBe(13);
    expect(clampVisibilitySeconds(-5)).toBe(0);
    expect(clampVisibilitySeconds(50_000)).toBe(MAX_VISIBILITY_SECONDS);
    expect(clampVisibilitySeconds(Number.POSITIVE_INFINITY)).toBe(MAX_VISIBILITY_SECONDS);
    expect(clampVisibilitySeconds(Number.NaN)).toBe(0);
    expect(clampDelaySeconds(0.2)).toBe(1);
    expect(clampDelaySeconds(1200)).toBe(MAX_DELAY_SECONDS);
    expect(clampDelaySeconds(Number.NEGATIVE_INFINITY)).toBe(0);
  });

  it('map every number into range as an integer (the identity, rounded up, inside it)', () => {
    const seed = Number(process.env.FC_SEED ?? Math.floor(Math.random() * 2 ** 31));
    console.log(`visibility.spec clamps: fast-check seed ${seed} (rerun with FC_SEED=${seed})`);
    fc.assert(
      fc.property(fc.double(), (seconds) => {
        for (const [clamp, max] of [
          [clampVisibilitySeconds, MAX_VISIBILITY_SECONDS],
          [clampDelaySeconds, MAX_DELAY_SECONDS],
        ] as const) {
          const clamped = clamp(seconds);
          expect(Number.isInteger(clamped)).toBe(true);
          expect(clamped).toBeGreaterThanOrEqual(0);
          expect(clamped).toBeLessThanOrEqual(max);
          if (seconds >= 0 && seconds <= max) expect(clamped).toBe(Math.ceil(seconds) + 0); // + 0: -0 clamps to 0
        }
      }),
      { seed, numRuns: 200 },
    );
  });
});
