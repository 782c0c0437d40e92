import { performance } from 'node:perf_hooks';

export interface LinearCostOptions {
  /** Size of the large input; the small one is a fifth of it. Default 100,000. */
  size?: number;
  /** Most the 5× larger input may cost, as a multiple of the small one. Default 15 (linear: ~5). */
  growth?: number;
  /** Catastrophe guard on the large input, in ms. Default 2,000. */
  ceilingMs?: number;
}

function timed(run: () => unknown): number {
  const start = performance.now();
  run();
  return performance.now() - start;
}

/**
 * Fails unless `run` costs about linear time in the size of its input: the best of five
 * interleaved runs on `build(size)` may cost at most `growth` times the best on `build(size / 5)`
 * (a quadratic cost gives ~25×). A growth ratio, unlike a wall-clock limit, holds on a loaded machine.
 */
export function expectLinearCost<T>(
  label: string,
  build: (size: number) => T,
  run: (input: T) => unknown,
  { size = 100_000, growth = 15, ceilingMs = 2_000 }: LinearCostOptions = {},
): void {
  const smallInput = build(Math.floor(size / 5));
  const largeInput = build(size);
  run(build(Math.min(1_000, size)));
  let small = Infinity;
  let large = Infinity;
  for (let round = 0; round < 5; round++) {
    small = Math.min(
      small,
      timed(() => run(smallInput)),
    );
    large = Math.min(
      large,
      timed(() => run(largeInput)),
    );
  }
  // Below a millisecond timer noise dominates: such a small input is cheap whatever its shape.
  const ratio = large / Math.max(small, 1);
  if (ratio >= growth || large >= ceilingMs) {
    throw new Error(
      `${label} is not linear: ${small.toFixed(1)} ms at size ${Math.floor(size / 5)}, ${large.toFixed(1)} ms at ${size}`,
    );
  }
}

/** `unit` repeated to exactly `size` characters. */
export function repeatTo(unit: string, size: number): string {
  return unit.repeat(Math.ceil(size / unit.length)).slice(0, size);
}
