import fc from 'fast-check';
import { parse as parseQueryString } from 'node:querystring';
import { expectLinearCost } from '@once/testing';
import { isSecretLogName, LOG_REDACTED, redactUrl } from './url.redactor';

const seed = Number(process.env.FC_SEED ?? Math.floor(Math.random() * 2 ** 31));
console.log(`url.redactor.spec: fast-check seed ${seed} (rerun with FC_SEED=${seed})`);
const runs = { seed, numRuns: 2_000 };

const SECRET_NAMES = [
  'token',
  'access_token',
  'refresh_token',
  'id_token',
  'api_key',
  'apiKey',
  'x-api-key',
  'key',
  'secret',
  'client_secret',
  'password',
  'passwd',
  'pwd',
  'auth',
  'authorization',
  'session',
  'sessionid',
  'code',
  'credential',
  'credentials',
  'sig',
  'signature',
  'X-Amz-Signature',
  'X-Amz-Credential',
  's',
  'r',
  'recipient',
  'email',
];
const BENIGN_NAMES = ['page', 'limit', 'c', 'ct', 't', 'm', 'utm_source', 'status', 'campaign', 'queue'];

/** Random case, maybe a `[]` suffix, some characters percent-encoded: all name the same parameter to a server. */
const disguised = (name: string) =>
  fc
    .tuple(
      fc.array(fc.boolean(), { minLength: name.length, maxLength: name.length }),
      fc.array(fc.boolean(), { minLength: name.length, maxLength: name.length }),
      fc.boolean(),
    )
    .map(([upper, encode, brackets]) => {
      const chars = [...name].map((char, i) => {
        const cased = /^[rs]$/i.test(name) ? char : upper[i] ? char.toUpperCase() : char.toLowerCase();
        return encode[i] ? `%${cased.charCodeAt(0).toString(16).toUpperCase()}` : cased;
      });
      return `${chars.join('')}${brackets ? '[]' : ''}`;
    });

/** Anything a client may put in a value before the next `&` or `#`, marked so it cannot occur by chance. */
const secretValue = (index: number) =>
  fc
    .string({ unit: fc.constantFrom(...'aZ09-._~%+;?=/:@!$\'"()*,<> [] '.split('')), maxLength: 12 })
    .map((tail) => `~${index}~${tail}`);

const benignValue = fc.string({ unit: fc.constantFrom(...'abcXYZ0123456789-._'.split('')), maxLength: 10 });

interface Param {
  name: string;
  value: string;
  secret: boolean;
}

const params = fc.array(fc.boolean(), { maxLength: 8 }).chain((kinds) =>
  fc.tuple(
    ...kinds.map((secret, index) =>
      secret
        ? fc
            .constantFrom(...SECRET_NAMES)
            .chain(disguised)
            .chain((name) => secretValue(index).map((value): Param => ({ name, value, secret })))
        : fc
            .tuple(fc.constantFrom(...BENIGN_NAMES), benignValue)
            .map(([name, value]): Param => ({ name, value, secret })),
    ),
  ),
);

const path = fc.constantFrom('/admin/queues', '/daily/', '/', 'https://site.example/p', '/webhooks/ses');
// The first segment of a tracking link is its target, not a key=value pair.
const target = fc.constantFrom('', '/updates/haml-3.1.2/', '%2Fprojects%2Fx%3Fa%3D1');

describe('redactUrl', () => {
  it('never keeps the value of a secret-named parameter, and keeps every other parameter', () => {
    fc.assert(
      fc.property(path, target, params, fc.boolean(), (base, first, list, inFragment) => {
        const query = [first, ...list.map((p) => `${p.name}=${p.value}`)].filter(Boolean).join('&');
        const url = inFragment ? `${base}#${query}` : `${base}?${query}`;
        const redacted = redactUrl(url);
        for (const param of list) {
          if (param.secret) expect(redacted).not.toContain(param.value);
          else expect(redacted).toContain(`${param.name}=${param.value}`);
        }
        expect(redacted.startsWith(inFragment ? `${base}#${first}` : `${base}?${first}`)).toBe(true);
        // What a server parses from the result (Express' query parser): no secret-named value survives.
        const parsed = parseQueryString(redacted.slice(base.length + 1));
        for (const [name, value] of Object.entries(parsed)) {
          if (isSecretLogName(name)) {
            for (const one of [value ?? []].flat()) expect(one).toBe(LOG_REDACTED);
          }
        }
        expect(redactUrl(redacted)).toBe(redacted);
      }),
      runs,
    );
  });

  it('hides secret assignments smuggled inside another value after ; or ?', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(';', '?'),
        fc.constantFrom(...SECRET_NAMES),
        secretValue(0),
        (sep, name, value) => {
          expect(redactUrl(`/x?a=1${sep}${name}=${value}&b=2`)).toBe(
            `/x?a=1${sep}${name}=${LOG_REDACTED}&b=2`,
          );
        },
      ),
      runs,
    );
  });

  it('leaves URLs without secret parameters alone', () => {
    fc.assert(
      fc.property(path, fc.array(fc.tuple(fc.constantFrom(...BENIGN_NAMES), benignValue)), (base, list) => {
        const url = list.length ? `${base}?${list.map(([n, v]) => `${n}=${v}`).join('&')}` : base;
        expect(redactUrl(url)).toBe(url);
      }),
      runs,
    );
  });

  it.each([
    [
      '/daily/?/updates/x/&c=camp&r=RCPT&m=digest&s=SIG',
      '/daily/?/updates/x/&c=camp&r=[redacted]&m=digest&s=[redacted]',
    ],
    ['/admin/queues?token=T0KEN', '/admin/queues?token=[redacted]'],
    ['/admin/mail?recipient=reader%40example.com&limit=5', '/admin/mail?recipient=[redacted]&limit=5'],
    ['/cb?code=abc&state=xyz#access_token=jwt', '/cb?code=[redacted]&state=xyz#access_token=[redacted]'],
    [
      '/s3?X-Amz-Credential=AKIA%2F&X-Amz-Signature=ff',
      '/s3?X-Amz-Credential=[redacted]&X-Amz-Signature=[redacted]',
    ],
    ['/health', '/health'],
    ['/x?token', '/x?token'],
  ])('%s', (url, expected) => {
    expect(redactUrl(url)).toBe(expected);
  });
});

describe('redactUrl with encoded nested URLs and secret-shaped values', () => {
  it.each([
    ['/daily/?/reset%3Ftoken%3Dabc123&c=Daily&s=SIG', 'abc123'],
    ['/daily/?%2Freset%3Ftoken%3Dabc123&c=Daily', 'abc123'],
    ['/login?next=https%3A%2F%2Fx%2F%3Faccess_token%3Dabc123', 'abc123'],
    ['/login?next=https%253A%252F%252Fx%252F%253Faccess_token%253Dabc123', 'abc123'],
    ['/login?next=%2Fp%23access_token%3Dabc123', 'abc123'],
    ['/login?next=%2Fp%3Bsession%3Dabc123', 'abc123'],
    ['/search?q=Bearer%20abc123def456', 'abc123def456'],
    ['/search?q=Bearer+abc123def456', 'abc123def456'],
    ['/search?q=postgres://u:longpassword@h/db', 'longpassword'],
    ['/search?q=postgres%3A%2F%2Fu%3Alongpassword%40h', 'longpassword'],
  ])('%s hides %s', (url, secret) => {
    const redacted = redactUrl(url);
    expect(redacted).not.toContain(secret);
    expect(decodeURIComponent(decodeURIComponent(redacted))).not.toContain(secret);
    expect(redactUrl(redacted)).toBe(redacted);
  });

  it('keeps the tracking target and benign parameters', () => {
    expect(redactUrl('/daily/?/reset%3Ftoken%3Dabc123&c=Daily&s=SIG')).toBe(
      `/daily/?/reset%3Ftoken%3D${LOG_REDACTED}&c=Daily&s=${LOG_REDACTED}`,
    );
    expect(redactUrl('/daily/?%2Fprojects%2Fx%3Fa%3D1&c=Daily')).toBe(
      '/daily/?%2Fprojects%2Fx%3Fa%3D1&c=Daily',
    );
    expect(redactUrl('/login?next=https%3A%2F%2Fx%2F%3Fpage%3D2')).toBe(
      '/login?next=https%3A%2F%2Fx%2F%3Fpage%3D2',
    );
  });

  it('costs linear time in the length of a URL', () => {
    expectLinearCost(
      'redactUrl of many double-encoded parameters',
      (size) => `/x?${Array.from({ length: size }, (_, i) => `a${i}=${'%25'.repeat(20)}v`).join('&')}`,
      redactUrl,
      { size: 2_000 },
    );
    expectLinearCost(
      'redactUrl of a long capitalised parameter name',
      (size) => `/daily/?${'A'.repeat(size)}=1`,
      redactUrl,
      {
        size: 16_000,
      },
    );
  });
});
