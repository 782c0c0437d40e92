import fc from 'fast-check';
import { performance } from 'node:perf_hooks';
import { SecretRedactor } from './secret.redactor';

const seed = Number(process.env.FC_SEED ?? Math.floor(Math.random() * 2 ** 31));
console.log(`redaction.performance.spec: fast-check seed ${seed} (rerun with FC_SEED=${seed})`);

/** Generous for a loaded 2-core machine; the quadratic patterns took 0.7–2.7 s on these inputs. */
const STRING_MS = 150;
const ERROR_MS = 300;
const SIZE = 100_000;

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

describe('SecretRedactor on adversarial input', () => {
  const redactor = new SecretRedactor({ secrets: ['abcdefgh12345678', 'zzzzyyyyxxxx9999'] });

  it.each(ALPHABETS)(`redactString of 100 KB of %j takes < ${STRING_MS} ms`, (unit) => {
    const input = repeatTo(unit, SIZE);
    redactor.redactString(input.slice(0, 1_000));
    expect(timed(() => redactor.redactString(input))).toBeLessThan(STRING_MS);
  });

  it(`redactString of 100 KB built from short alphabets takes < ${STRING_MS} ms (fast-check)`, () => {
    const unit = fc
      .array(fc.constantFrom(...ALPHABETS, 'a', 'A', '1', '.', '-', '/', ':', '@', ' ', '_'), {
        minLength: 1,
        maxLength: 4,
      })
      .map((parts) => parts.join(''));
    fc.assert(
      fc.property(unit, (chosen) => {
        const input = repeatTo(chosen, SIZE);
        const ms = timed(() => redactor.redactString(input));
        if (ms >= STRING_MS) throw new Error(`${JSON.stringify(chosen)} repeated took ${Math.round(ms)} ms`);
      }),
      { seed, numRuns: 15 },
    );
  });

  it(`redactString of 800 KB of repeated PEM BEGIN lines (the mail body's scan limit) takes < ${4 * STRING_MS} ms`, () => {
    const input = repeatTo('-----BEGIN A-----!', 800_000);
    expect(timed(() => redactor.redactString(input, 200_000))).toBeLessThan(4 * STRING_MS);
  });

  it(`redact of an Error with a 100 KB message takes < ${ERROR_MS} ms and hides nothing it shows unscanned`, () => {
    for (const unit of ['a-', 'a.', 'sk-ant-a']) {
      const error = new Error(`invalid value: ${repeatTo(unit, SIZE)}`);
      expect(timed(() => redactor.redact(error))).toBeLessThan(ERROR_MS);
    }
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
