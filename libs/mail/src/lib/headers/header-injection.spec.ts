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
  '\uff20',
  '\ufe6b',
  '\uff1c',
  '\uff1e',
  '\ufe64',
  '\u200b',
  '\u2060',
  '\ufeff',
  '\u00ad',
  'ceo\uff20once.example',
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
        // Nothing a mail client would show as an address or hide from the reader.
        expect(decodeWords(parsed[0].name).normalize('NFKC')).not.toMatch(/[@<>]|\p{Cf}/u);
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

  it('a List-Unsubscribe mailto is refused (naming the field) or, parsed back per RFC 6068, has exactly the one given recipient and only subject/body fields without controls', () => {
    const hfieldName = fc.constantFrom(
      'subject',
      'body',
      'Subject',
      'BODY',
      'to',
      'cc',
      'bcc',
      'To',
      'BCC',
      '%74o',
      '%63c',
      'su%62ject',
    );
    const pct = fc.constantFrom(
      '%0d%0a',
      '%0D%0ABcc:%20x@evil.example',
      '%00',
      '%09',
      '%7f',
      '%c2%85',
      '%e2%80%a8',
      '%E2%80%A9',
      '%2C',
      '%2C%20b@evil.example',
      '%26to=b@evil.example',
      '%3F',
      '%ff',
      'b@evil.example',
      'unsubscribe%20',
    );
    const value = fc
      .array(fc.oneof(pct, hostile, fc.stringMatching(/^[A-Za-z0-9@.=&?%-]{0,6}$/)), { maxLength: 4 })
      .map((p) => p.join(''));
    const query = fc.oneof(
      fc.constant(''),
      fc
        .array(fc.tuple(hfieldName, value), { minLength: 1, maxLength: 3 })
        .map((fields) => `?${fields.map(([n, v]) => `${n}=${v}`).join('&')}`),
      value.map((v) => `?${v}`),
    );
    const addressLocal = fc.oneof(
      local,
      fc
        .tuple(local, fc.constantFrom('%2C', '%2Cb%40evil.example', '#', '&', '=', '%', '/', '{|}'))
        .map(([l, x]) => `${l}${x}`),
    );
    const mailto = fc
      .tuple(
        fc.boolean(),
        addressLocal,
        domain,
        fc.constantFrom('', ',b@evil.example', '%2Cb@evil.example'),
        query,
      )
      .map(([scheme, l, d, extra, q]) => `${scheme ? 'mailto:' : ''}${l}@${d}${extra}${q}`);
    const decode = (part: string) => {
      try {
        return decodeURIComponent(part);
      } catch {
        return part;
      }
    };
    const seen = { accepted: 0, refused: 0 };
    fc.assert(
      fc.property(mailto, (m) => {
        const { mail, error } = attempt({ ...base, listUnsubscribe: { mailto: m } });
        if (error) {
          seen.refused++;
          expect(error.fields).toContain('listUnsubscribe.mailto');
          return;
        }
        seen.accepted++;
        const header = mail!.headers.find((h) => h.name === 'List-Unsubscribe')!.value;
        const target = /^<(mailto:[^<>\s,#]+)>$/.exec(header)?.[1];
        expect(target).toBeDefined();
        // RFC 6068: to-part and hfields are percent-decoded; to, cc and bcc hfields add recipients.
        const [toPart, hfields] = target!.slice('mailto:'.length).split(/\?(.*)/s);
        const recipients = decode(toPart).split(',');
        for (const hfield of hfields === undefined ? [] : hfields.split('&')) {
          const [name, ...rest] = hfield.split('=');
          const decoded = decode(rest.join('='));
          expect(['subject', 'body']).toContain(decode(name).toLowerCase());
          expect(decoded).not.toMatch(controls);
          if (['to', 'cc', 'bcc'].includes(decode(name).toLowerCase()))
            recipients.push(...decoded.split(','));
        }
        expect(recipients).toHaveLength(1);
        const inputAddress = m.replace(/^mailto:/, '').split('?')[0];
        expect(recipients[0].toLowerCase()).toBe(
          `${inputAddress.slice(0, inputAddress.lastIndexOf('@'))}@${new URL(`https://${inputAddress.slice(inputAddress.lastIndexOf('@') + 1)}`).hostname}`.toLowerCase(),
        );
      }),
      { seed, numRuns: runs },
    );
    console.log(`List-Unsubscribe mailto: ${seen.accepted} accepted, ${seen.refused} refused`);
    expect(seen.accepted).toBeGreaterThan(runs / 20);
    expect(seen.refused).toBeGreaterThan(runs / 20);
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
