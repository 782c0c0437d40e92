import fc from 'fast-check';
import { performance } from 'node:perf_hooks';
import { SecretRedactor } from './secret.redactor';

const seed = Number(process.env.FC_SEED ?? Math.floor(Math.random() * 2 ** 31));
console.log(`redaction.performance.spec: fast-check seed ${seed} (rerun with FC_SEED=${seed})`);

/**
 * Wall-clock limits are not what these tests check (the suite shares 2 cores with other suites):
 * they check that the cost grows linearly. Five times the input may cost at most GROWTH times as
 * much (linear: ~5, noise included up to ~13; the quadratic patterns fixed here: ~25, 0.7–2.7 s at 100 KB), and CEILING_MS
 * only catches a catastrophe.
 */
const SIZE = 100_000;
const GROWTH = 15;
const CEILING_MS = 2_000;

const ALPHABETS = [
  'a.',
  'a-',
  'a+',
  'eyJa.',
  'eyJaaaa.',
  'sk-a-',
  'sk-ant-a',
  '://a',
  'a://x@',
  '%',
  '%2',
  '\\"',
  '=',
  'a=',
  'Bearer ',
  'password=[',
  'cookie=a;',
  '-----BEGIN A-----!',
  'aB3/',
  '(a)=(',
  'a:\n',
  'Digest a="',
  'xoxb-',
  'AKIA',
  '?a=',
  'eyJa-',
  'SG.a-',
  'xoxb-a.',
  'sk-ant-aaaa',
  '%41',
  'token%3Da%26',
  '%FF ',
  'a%2F',
];

function repeatTo(unit: string, size: number): string {
  return unit.repeat(Math.ceil(size / unit.length)).slice(0, size);
}

function timed(run: () => unknown): number {
  const start = performance.now();
  run();
  return performance.now() - start;
}

/** Best of five runs, interleaved small/large, of `redact` on `unit` repeated to SIZE / 5 and SIZE. */
function growth(
  unit: string,
  redact: (input: string) => unknown,
): { small: number; large: number; ratio: number } {
  const smallInput = repeatTo(unit, SIZE / 5);
  const largeInput = repeatTo(unit, SIZE);
  let small = Infinity;
  let large = Infinity;
  for (let round = 0; round < 5; round++) {
    small = Math.min(
      small,
      timed(() => redact(smallInput)),
    );
    large = Math.min(
      large,
      timed(() => redact(largeInput)),
    );
  }
  // Below a millisecond timer noise dominates: such a small input is cheap whatever its shape.
  return { small, large, ratio: large / Math.max(small, 1) };
}

function expectLinear(unit: string, redact: (input: string) => unknown): void {
  const { small, large, ratio } = growth(unit, redact);
  const detail = `${JSON.stringify(unit)}: ${small.toFixed(1)} ms at ${SIZE / 5}, ${large.toFixed(1)} ms at ${SIZE}`;
  if (ratio >= GROWTH || large >= CEILING_MS) throw new Error(`not linear: ${detail}`);
}

describe('SecretRedactor on adversarial input', () => {
  const redactor = new SecretRedactor({ secrets: ['abcdefgh12345678', 'zzzzyyyyxxxx9999'] });

  it.each(ALPHABETS)('redactString of %j repeated costs linear time in its length', (unit) => {
    redactor.redactString(repeatTo(unit, 1_000));
    expectLinear(unit, (input) => redactor.redactString(input));
  });

  it('redactString of short alphabets repeated costs linear time (fast-check)', () => {
    const unit = fc
      .array(fc.constantFrom(...ALPHABETS, 'a', 'A', '1', '.', '-', '/', ':', '@', ' ', '_'), {
        minLength: 1,
        maxLength: 4,
      })
      .map((parts) => parts.join(''));
    fc.assert(
      fc.property(unit, (chosen) => expectLinear(chosen, (input) => redactor.redactString(input))),
      { seed, numRuns: 15 },
    );
  });

  it('redactString of repeated PEM BEGIN lines up to the mail body scan limit costs linear time', () => {
    expectLinear('-----BEGIN A-----!', (input) => redactor.redactString(input.repeat(8), 200_000));
  });

  it('redact of an Error with a long message costs linear time', () => {
    for (const unit of ['a-', 'a.', 'sk-ant-a'])
      expectLinear(unit, (input) => redactor.redact(new Error(`invalid value: ${input}`)));
  });

  it('stops scanning past its total budget per call: later strings become [truncated], never raw', () => {
    const secretLike = 'password=hunter2hunter2';
    const value = Array.from({ length: 40 }, (_, index) => `${index} ${'x'.repeat(15_000)} ${secretLike}`);
    const out = redactor.redact({ value }) as { value: string[] };
    expect(out.value.some((item) => item.includes('hunter2hunter2'))).toBe(false);
    expect(out.value[0].endsWith('password=[REDACTED]')).toBe(true);
    expect(out.value[39]).toBe('[truncated]');
  });
});
