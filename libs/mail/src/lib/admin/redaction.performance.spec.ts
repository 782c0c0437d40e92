import fc from 'fast-check';
import { expectLinearCost, repeatTo } from '@once/testing';
import { SecretRedactor } from './secret.redactor';

const seed = Number(process.env.FC_SEED ?? Math.floor(Math.random() * 2 ** 31));
console.log(`redaction.performance.spec: fast-check seed ${seed} (rerun with FC_SEED=${seed})`);

/** The quadratic patterns fixed here took 0.7–2.7 s at 100 KB (~27× for 5× the input). */
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
  'A',
  'AB=',
  'XCSRF',
];

const expectLinear = (unit: string, redact: (input: string) => unknown): void =>
  expectLinearCost(JSON.stringify(unit), (size) => repeatTo(unit, size), redact);

describe('SecretRedactor on adversarial input', () => {
  const redactor = new SecretRedactor({ secrets: ['abcdefgh12345678', 'zzzzyyyyxxxx9999'] });

  it.each(ALPHABETS)('redactString of %j repeated costs linear time in its length', (unit) => {
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

  it('isSensitiveKey and redact of an object with a long capitalised key cost linear time', () => {
    expectLinearCost(
      'isSensitiveKey(AAAA…)',
      (size) => 'A'.repeat(size),
      (name) => redactor.isSensitiveKey(name),
    );
    expectLinearCost(
      'redact({ AAAA…: 1 })',
      (size) => ({ ['A'.repeat(size)]: 1 }),
      (value) => redactor.redact(value),
    );
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
