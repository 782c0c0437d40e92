import fc from 'fast-check';
import { secretForms } from '@once/testing';
import { SecretRedactor } from './secret.redactor';

const seed = Number(process.env.FC_SEED ?? Math.floor(Math.random() * 2 ** 31));
console.log(`redaction.property.spec: fast-check seed ${seed} (rerun with FC_SEED=${seed})`);
const runs = { seed, numRuns: 300 };

const alnum = (min: number, max: number) => fc.stringMatching(new RegExp(`^[A-Za-z0-9]{${min},${max}}$`));
/** A random credential: letters and digits with at least one digit, so it is not a prose word. */
const credential = fc
  .tuple(alnum(7, 30), fc.integer({ min: 0, max: 9 }))
  .map(([value, digit]) => `${value}${digit}`);
const secretName = fc.constantFrom(
  'password',
  'passwd',
  'api_key',
  'apiKey',
  'X-Auth-Token',
  'sessionId',
  'client-secret',
  'privateKey',
  'accessKey',
  'auth',
  'x-goog-api-key',
  'signature',
  'credentials',
  'refresh_token',
);
const word = fc.constantFrom(
  'the',
  'job',
  'failed',
  'at',
  'digest',
  'user',
  '42',
  'retry',
  '(',
  ')',
  ':',
  '\n',
  '|',
  'ok',
);
const surroundings = fc.array(word, { maxLength: 12 }).map((words) => words.join(' '));

/** A secret planted the way one class of leak looks: `[secret, text carrying it]`. */
const planted: fc.Arbitrary<[string, string]> = fc.oneof(
  fc.tuple(secretName, credential).map(([name, value]): [string, string] => [value, `${name}=${value}`]),
  fc
    .tuple(secretName, credential)
    .map(([name, value]): [string, string] => [value, `{"${name}": "${value}"}`]),
  fc.tuple(secretName, credential).map(([name, value]): [string, string] => [value, `${name}: '${value}'`]),
  credential.map((value): [string, string] => [value, `Authorization: Bearer ${value}`]),
  credential.map((value): [string, string] => [value, `Bearer ${value}`]),
  fc
    .tuple(fc.stringMatching(/^[A-Za-z0-9@,:!$-]{8,20}$/), fc.constantFrom('', 'once'))
    .map(([value, user]): [string, string] => [value, `redis://${user}:${value}@cache.internal:6379`]),
  fc
    .tuple(secretName, credential)
    .map(([name, value]): [string, string] => [value, `/x?page=2&${name}=${value}&lang=en`]),
  fc.tuple(fc.stringMatching(/^[A-Za-z0-9/+]{37}$/), fc.nat(36)).map(([value, at]): [string, string] => {
    const key = `${value.slice(0, at)}Aa1${value.slice(at)}`;
    return [key, `aws secret ${key}`];
  }),
  alnum(36, 36).map((value): [string, string] => [`ghp_${value}`, `push with ghp_${value}`]),
  alnum(24, 30).map((value): [string, string] => [`sk_live_${value}`, `stripe sk_live_${value}`]),
  alnum(35, 35).map((value): [string, string] => [`AIza${value}`, `maps AIza${value}`]),
  alnum(36, 36).map((value): [string, string] => [`npm_${value}`, `npm_${value}`]),
  fc
    .tuple(alnum(20, 40), alnum(20, 40), alnum(20, 40))
    .map(([a, b, c]): [string, string] => [`eyJ${a}.${b}.${c}`, `jwt eyJ${a}.${b}.${c}`]),
  fc
    .array(fc.stringMatching(/^[A-Za-z0-9+/]{64}$/), { minLength: 1, maxLength: 4 })
    .map((lines): [string, string] => [
      lines.join('\n'),
      `-----BEGIN PRIVATE KEY-----\n${lines.join('\n')}\n-----END PRIVATE KEY-----`,
    ]),
  credential.map((value): [string, string] => [value, `Cookie: theme=dark; session=${value}; lang=en`]),
);

describe('SecretRedactor (properties)', () => {
  const redactor = new SecretRedactor();

  it('never lets a planted secret of any class through, whatever surrounds it', () => {
    fc.assert(
      fc.property(surroundings, planted, surroundings, (before, [secret, text], after) => {
        const output = redactor.redactString(`${before} ${text} ${after}`);
        return secretForms(secret).every((form) => !output.includes(form));
      }),
      runs,
    );
  });

  it('is idempotent', () => {
    fc.assert(
      fc.property(surroundings, planted, surroundings, (before, [, text], after) => {
        const once = redactor.redactString(`${before} ${text} ${after}`);
        return redactor.redactString(once) === once;
      }),
      runs,
    );
  });

  it('hides configured secrets raw, URL-encoded, base64, base64url and hex', () => {
    const configured = fc
      .string({ unit: 'grapheme', minLength: 8, maxLength: 24 })
      .filter((value) => new Set(value).size >= 4 && value.trim() === value);
    const encode = fc.constantFrom(
      (value: string) => value,
      (value: string) => encodeURIComponent(value),
      (value: string) => encodeURIComponent(encodeURIComponent(value)),
      (value: string) => Buffer.from(value).toString('base64'),
      (value: string) => Buffer.from(value).toString('base64url'),
      (value: string) => Buffer.from(value).toString('hex'),
      (value: string) => Buffer.from(`user:${value}`).toString('base64'),
      (value: string) => JSON.stringify({ value }),
    );
    fc.assert(
      fc.property(surroundings, configured, encode, surroundings, (before, secret, form, after) => {
        const output = new SecretRedactor({ secrets: [secret] }).redactString(
          `${before} ${form(secret)} ${after}`,
        );
        return secretForms(secret).every((encoded) => !output.includes(encoded));
      }),
      runs,
    );
  });

  it('truncates after redacting: no 8-character piece of a planted secret survives the cut', () => {
    const maxStringLength = 200;
    const small = new SecretRedactor({ maxStringLength });
    fc.assert(
      fc.property(
        fc.integer({ min: 120, max: 210 }),
        planted,
        surroundings,
        (offset, [secret, text], after) => {
          const output = small.redactString(
            `${'x '.repeat(offset / 2)}${offset % 2 ? ' ' : ''} ${text} ${after}`,
          );
          if (output.length > maxStringLength + '…[truncated]'.length) return false;
          for (let start = 0; start + 8 <= secret.length; start++) {
            if (output.includes(secret.slice(start, start + 8))) return false;
          }
          return true;
        },
      ),
      runs,
    );
  });
});
