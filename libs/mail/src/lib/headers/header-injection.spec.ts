import fc from 'fast-check';
import { MailValidationError } from '../mail.errors';
import type { SendMailInput } from '../mail.types';
import { prepareMail } from './mail-message.builder';

// An independent RFC 5322 address-list parser as the oracle (nodemailer's, installed with the SES emulator).
const addressparser = require('nodemailer/lib/addressparser') as (
  value: string,
) => Array<{ name: string; address?: string; group?: unknown[] }>;

const seed = Number(process.env.FC_SEED ?? Math.floor(Math.random() * 2 ** 31));
console.log(`header-injection.spec: fast-check seed ${seed} (rerun with FC_SEED=${seed})`);
const runs = Number(process.env.FC_RUNS ?? 1500);

const base: SendMailInput = { idempotencyKey: 'k:1', to: 'ada@example.com', subject: 'S', text: 'T' };

/** Pieces attackers use to change a header's structure. */
const hostile = fc.constantFrom(
  '<',
  '>',
  ',',
  ';',
  ':',
  '"',
  '\\',
  '@',
  ' ',
  '\t',
  '\r',
  '\n',
  '\r\n',
  '\u2028',
  '\u2029',
  '\u0000',
  '\u0085',
  '\u007f',
  '\u202e',
  '\ud800',
  '>, <https://evil.example/x>',
  '\r\nBcc: x@evil.example',
  ', b@evil.example',
  '=?UTF-8?B?PGE+?=',
  'ü',
  '%0d%0a',
  '(',
  ')',
  '[',
  ']',
);
const text = fc
  .array(fc.oneof(hostile, fc.string({ unit: 'binary', maxLength: 6 }), fc.string({ maxLength: 6 })), {
    maxLength: 6,
  })
  .map((parts) => parts.join(''));
const local = fc.stringMatching(/^[A-Za-z0-9._+-]{1,10}$/);
const domain = fc.constantFrom(
  'once.example',
  'Once.EXAMPLE',
  'bücher.de',
  'xn--bcher-kva.de',
  'a-b.example',
);

function attempt(input: SendMailInput) {
  try {
    return { mail: prepareMail(input, 'Once <digest@once.example>') };
  } catch (error) {
    if (!(error instanceof MailValidationError)) throw error;
    return { error };
  }
}

const decodeWords = (value: string) =>
  value
    .replace(/\?=\s+=\?/g, '?==?')
    .replace(/=\?UTF-8\?B\?([^?]*)\?=/g, (_, b64: string) => Buffer.from(b64, 'base64').toString('utf8'));

// eslint-disable-next-line no-control-regex
const controls = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

describe('header injection (property)', () => {
  it('a From value is refused (naming from, status 400) or becomes exactly one mailbox with the same address and name', () => {
    const from = fc.oneof(
      text,
      fc.tuple(text, local, domain).map(([name, l, d]) => `${name} <${l}@${d}>`),
      fc.tuple(text, local, domain).map(([name, l, d]) => `"${name}" <${l}@${d}>`),
      fc.tuple(local, text, domain).map(([l, junk, d]) => `${l}${junk}@${d}`),
    );
    const seen = { accepted: 0, refused: 0 };
    fc.assert(
      fc.property(from, (value) => {
        const { mail, error } = attempt({ ...base, from: value });
        if (error) {
          seen.refused++;
          expect(error.fields).toContain('from');
          expect(error.getStatus()).toBe(400);
          return;
        }
        seen.accepted++;
        const header = mail!.from;
        expect(header).not.toMatch(controls);
        expect(header).toMatch(/^[\x20-\x7e]+$/);
        const parsed = addressparser(header);
        expect(parsed).toHaveLength(1);
        expect(parsed[0].group).toBeUndefined();
        // The address is the input's, domain in ASCII; the name is the input's name, decoded.
        const inputAddress = /<([^<>]*)>$/.exec(value)?.[1] ?? value;
        expect(parsed[0].address?.toLowerCase()).toBe(
          `${inputAddress.slice(0, inputAddress.lastIndexOf('@'))}@${new URL(`https://${inputAddress.slice(inputAddress.lastIndexOf('@') + 1)}`).hostname}`.toLowerCase(),
        );
        const inputName = value.includes('<') ? value.slice(0, value.lastIndexOf('<')).trim() : '';
        const expectedName = inputName.startsWith('"')
          ? inputName.slice(1, -1).replace(/\\(.)/g, '$1')
          : inputName.replace(/ {2,}/g, ' ');
        expect(decodeWords(parsed[0].name)).toBe(expectedName);
      }),
      { seed, numRuns: runs },
    );
    console.log(`From values: ${seen.accepted} accepted, ${seen.refused} refused`);
    expect(seen.accepted).toBeGreaterThan(runs / 10);
    expect(seen.refused).toBeGreaterThan(runs / 10);
  });

  it('List-Unsubscribe is refused (naming the field) or holds exactly the given targets, each a plain URI on the same host', () => {
    const url = fc.oneof(
      fc.webUrl({ validSchemes: ['https'], withQueryParameters: true, withFragments: true }),
      fc.tuple(fc.webUrl({ validSchemes: ['https'] }), text).map(([u, junk]) => `${u}${junk}`),
      fc
        .tuple(text, fc.webUrl({ validSchemes: ['https'] }))
        .map(([junk, u]) => `https://once.example/u${junk}${u}`),
      text,
    );
    const mailto = fc.oneof(
      fc.constant(undefined),
      fc.tuple(local, domain).map(([l, d]) => `${l}@${d}`),
      fc.tuple(local, domain, text).map(([l, d, junk]) => `mailto:${l}@${d}?subject=${junk}`),
      text,
    );
    const seen = { accepted: 0, refused: 0 };
    fc.assert(
      fc.property(url, mailto, (u, m) => {
        const { mail, error } = attempt({ ...base, listUnsubscribe: { url: u, mailto: m } });
        if (error) {
          seen.refused++;
          expect(error.fields.some((field) => field.startsWith('listUnsubscribe.'))).toBe(true);
          return;
        }
        seen.accepted++;
        const value = mail!.headers.find((h) => h.name === 'List-Unsubscribe')!.value;
        const targets = /^<([^<>\s,]+)>(?:, <([^<>\s,]+)>)?$/.exec(value);
        expect(targets).not.toBeNull();
        expect(targets!.filter(Boolean).length - 1).toBe(m === undefined ? 1 : 2);
        const target = new URL(targets![1]);
        expect(target.href).toBe(targets![1]);
        expect(target.hostname).toBe(new URL(u).hostname);
        if (m !== undefined) expect(targets![2]).toMatch(/^mailto:[^@]+@[a-z0-9.-]+(\?.*)?$/);
      }),
      { seed, numRuns: runs },
    );
    console.log(`List-Unsubscribe targets: ${seen.accepted} accepted, ${seen.refused} refused`);
    expect(seen.accepted).toBeGreaterThan(runs / 10);
    expect(seen.refused).toBeGreaterThan(runs / 10);
  });

  it('any control character, CR, LF, NUL, U+2028 or U+2029 in the subject is refused, naming subject', () => {
    const forbidden = fc.oneof(
      fc.integer({ min: 0, max: 0x1f }),
      fc.integer({ min: 0x7f, max: 0x9f }),
      fc.constantFrom(0x2028, 0x2029),
    );
    fc.assert(
      fc.property(fc.string(), forbidden, fc.string(), (before, code, after) => {
        const { error } = attempt({ ...base, subject: `S${before}${String.fromCharCode(code)}${after}` });
        expect(error?.fields).toEqual(['subject']);
        expect(error?.message).toContain('U+');
      }),
      { seed, numRuns: runs },
    );
  });
});
