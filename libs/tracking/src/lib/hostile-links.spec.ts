import { runInNewContext } from 'node:vm';
import { LinkBuilder, TrackingLinkError } from './link.builder';
import { encodeTarget } from './link.codec';
import { signLink } from './link.signer';
import { LinkVerifier } from './link.verifier';
import { renderStaticRedirectPage } from './static-page.writer';
import { checkTarget } from './target.policy';

const SITE = 'https://site.example';
const SECRET = 'current-secret-0123456789abcdef0123';
const options = { baseUrl: SITE, secrets: [SECRET] };
const verifier = new LinkVerifier(options);
const builder = new LinkBuilder(options);

/** Targets as they are after the link's first segment is decoded. None may leave the site. */
const HOSTILE_TARGETS: readonly string[] = [
  '//evil.com',
  '//evil.com/updates/',
  '///evil.com',
  '/\\evil.com',
  '\\\\evil.com',
  '\\/evil.com',
  '/\\/evil.com',
  '/\t/evil.com',
  '/\n/evil.com',
  '/\r\n/evil.com',
  '\t//evil.com',
  ' //evil.com',
  '/ /evil.com',
  '/\u0000/evil.com',
  '\uFEFF//evil.com',
  '\u3000//evil.com',
  '/\u2028/evil.com',
  '\u202E//moc.live',
  '/%0d%0a\r\nLocation: https://evil.com',
  'javascript:alert(1)',
  'JaVaScRiPt:alert(document.domain)',
  ' javascript:alert(1)',
  'java\tscript:alert(1)',
  'javascript://site.example/%0aalert(1)',
  'data:text/html,<script>alert(1)</script>',
  'data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==',
  'vbscript:msgbox(1)',
  'https://evil.com',
  'http://evil.com/updates/',
  'HTTPS://EVIL.COM',
  'https:evil.com',
  'http:evil.com',
  'https:/evil.com',
  'https:\\\\evil.com',
  'ftp://evil.com',
  '//site.example@evil.com',
  'https://site.example@evil.com/',
  'https://site.example.evil.com/',
  'https://evil.com\\@site.example/',
  '//evil.com%2f..',
  '/updates/..//evil.com',
  '/%2e%2e//evil.com',
  '%2F%2Fevil.com',
  '%252F%252Fevil.com',
  'evil.com',
  '',
  `/${'a'.repeat(2048)}`,
];

/** First segments as they appear in a link (percent-encoded or double-encoded), decoding to something hostile. */
const HOSTILE_SEGMENTS: readonly string[] = [
  '%2F%2Fevil.com',
  '/%2F%2Fevil.com',
  '%2F%5Cevil.com',
  '%5C%5Cevil.com',
  '/%09/evil.com',
  '%09//evil.com',
  '/%0A/evil.com',
  '/%0D%0ALocation:%20https://evil.com',
  '%20//evil.com',
  'javascript:alert(1)',
  'javascript%3Aalert(1)',
  'data%3Atext/html,x',
  'https%3A%2F%2Fevil.com',
  'https://evil.com',
  'https:evil.com',
  '%68ttps://evil.com',
  '//site.example%40evil.com',
  '%252F%252Fevil.com',
  '%25252F%25252Fevil.com',
  '%E0%A4%A',
  '%',
];

/** Targets that look odd but resolve on the site: they may redirect, but only to the site. */
const ON_SITE_TARGETS: readonly string[] = ['/@evil.com', '/%2F%2Fevil.com', '/.evil.com', '/evil.com/'];

const params = { campaign: 'Daily_Notification', recipientId: '42' };

function signedQuery(segment: string, target: string): string {
  return `${segment}&c=Daily_Notification&r=42&s=${signLink(SECRET, { target, ...params })}`;
}

function decodeOrRaw(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

describe('hostile link corpus', () => {
  it.each(HOSTILE_TARGETS.map((target) => [JSON.stringify(target), target]))(
    'refuses target %s',
    (_name, target) => {
      expect(checkTarget(target, SITE, undefined).ok).toBe(false);
      expect(() => builder.build(target, params)).toThrow(TrackingLinkError);
      // Signed with the real secret (a leaked key, or a builder bug): still no redirect.
      expect(verifier.verifyQuery(signedQuery(encodeTarget(target), target))).toEqual({
        ok: false,
        reason: expect.stringMatching(/^(malformed|off-site)$/),
      });
    },
  );

  it.each(HOSTILE_SEGMENTS.map((segment) => [segment]))(
    'refuses link segment %s, signed or not',
    (segment) => {
      const unsigned = verifier.verifyQuery(`${segment}&c=Daily_Notification`);
      const forged = verifier.verifyQuery(`${segment}&c=Daily_Notification&s=${'A'.repeat(22)}`);
      const signed = verifier.verifyQuery(signedQuery(segment, decodeOrRaw(segment)));
      expect([unsigned.ok, forged.ok, signed.ok]).toEqual([false, false, false]);
      expect(unsigned).toEqual({ ok: false, reason: expect.stringMatching(/^(unsigned|malformed)$/) });
    },
  );

  it.each(ON_SITE_TARGETS.map((target) => [target]))(
    'keeps odd but local target %s on the site',
    (target) => {
      const result = verifier.verify(builder.build(target, params));
      if (!result.ok) throw new Error(`expected ${target} to verify, got ${result.reason}`);
      expect(new URL(result.location).origin).toBe(SITE);
      expect(result.location.startsWith(`${SITE}/`)).toBe(true);
    },
  );

  it('never yields an off-site location for fuzzed signed targets', () => {
    const pieces = [
      '/',
      '//',
      '\\',
      ':',
      '@',
      '.',
      '..',
      '%2F',
      '%5C',
      '%2e',
      'evil.com',
      'https:',
      'javascript:',
      '#',
      '?',
      '\t',
      ' ',
      '%25',
    ];
    let seed = 1234567;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    let accepted = 0;
    for (let i = 0; i < 3000; i++) {
      let target = '';
      const length = 1 + Math.floor(random() * 6);
      for (let j = 0; j < length; j++) target += pieces[Math.floor(random() * pieces.length)];
      const result = verifier.verifyQuery(signedQuery(encodeTarget(target), target));
      if (result.ok) {
        accepted++;
        expect(result.location.startsWith(`${SITE}/`)).toBe(true);
        expect(new URL(result.location).origin).toBe(SITE);
      }
    }
    // The fuzzer must exercise both outcomes to mean anything.
    expect(accepted).toBeGreaterThan(100);
    expect(accepted).toBeLessThan(3000);
  });
});

describe('static page script on the hostile corpus', () => {
  const html = renderStaticRedirectPage({ baseUrl: SITE, pathAllowlist: ['/updates/', '/'] });
  const script = /<script>([\s\S]*)<\/script>/.exec(html)?.[1] ?? '';
  const config =
    /<script type="application\/json" id="once-tracking-config">([\s\S]*?)<\/script>/.exec(html)?.[1] ?? '';

  function runPage(search: string): { replaced: string[]; invalidShown: boolean } {
    const replaced: string[] = [];
    const invalid = { hidden: true };
    runInNewContext(script, {
      URL,
      URLSearchParams,
      location: { search, replace: (href: string) => replaced.push(href) },
      document: {
        getElementById: (id: string) => (id === 'once-tracking-config' ? { textContent: config } : invalid),
      },
    });
    return { replaced, invalidShown: !invalid.hidden };
  }

  it('finds the script and config in the page', () => {
    expect(script).toContain('location.replace');
    expect(JSON.parse(config)).toMatchObject({ origin: SITE });
  });

  it.each([...HOSTILE_TARGETS.map(encodeTarget), ...HOSTILE_SEGMENTS].map((segment) => [segment]))(
    'does not redirect %s',
    (segment) => {
      const page = runPage(`?${segment}&c=Daily_Notification`);
      expect(page).toEqual({ replaced: [], invalidShown: true });
    },
  );

  it.each(ON_SITE_TARGETS.map((target) => [target]))('keeps %s on the site', (target) => {
    const page = runPage(`?${encodeTarget(target)}&c=Daily_Notification`);
    expect(page.replaced).toHaveLength(1);
    expect(new URL(page.replaced[0]).origin).toBe(SITE);
  });
});
