import { LinkBuilder, TrackingLinkError } from './link.builder';
import { signLink } from './link.signer';

const SITE = 'https://site.example';
const CURRENT = 'current-secret-0123456789abcdef0123';
const PREVIOUS = 'previous-secret-0123456789abcdef012';
const SEED_PATH = '/updates/haml-3.1.2/haml-3.2.0.rc.3/11765/';

describe('LinkBuilder', () => {
  const builder = new LinkBuilder({ baseUrl: SITE, secrets: [CURRENT, PREVIOUS] });

  it("keeps the seed's readable path verbatim in the ?-path shape", () => {
    const link = builder.build(SEED_PATH, { campaign: 'Daily_Notification', recipientId: 42 });
    const signature = signLink(CURRENT, {
      target: SEED_PATH,
      campaign: 'Daily_Notification',
      recipientId: '42',
    });
    expect(link).toBe(`${SITE}/daily/?${SEED_PATH}&c=Daily_Notification&r=42&s=${signature}`);
    expect(signature).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });

  it('signs with the current (first) secret only', () => {
    const link = builder.build(SEED_PATH, { campaign: 'Daily_Notification' });
    const fields = { target: SEED_PATH, campaign: 'Daily_Notification' };
    expect(link.endsWith(`&s=${signLink(CURRENT, fields)}`)).toBe(true);
    expect(link).not.toContain(signLink(PREVIOUS, fields));
  });

  it('writes every parameter in a fixed order and encodes the target so URL parsing leaves it unchanged', () => {
    const link = builder.build("/search?q=a%20b&x=1+2#it's", {
      campaign: 'Daily Notification',
      content: 'top&tail',
      term: 'haml',
      recipientId: 'u-7',
      messageKey: 'daily-digest:2026-11-22',
    });
    const mark = link.indexOf('?');
    const [head, query] = [link.slice(0, mark), link.slice(mark + 1)];
    expect(head).toBe(`${SITE}/daily/`);
    expect(query.split('&').map((part) => part.split('=')[0])).toEqual([
      '/search%3Fq%3Da%2520b%26x%3D1%2B2%23it%27s',
      'c',
      'ct',
      't',
      'r',
      'm',
      's',
    ]);
    expect(query).toContain(
      '&c=Daily+Notification&ct=top%26tail&t=haml&r=u-7&m=daily-digest%3A2026-11-22&s=',
    );
    expect(new URL(link).href).toBe(link);
  });

  it('uses the configured tracking path', () => {
    const custom = new LinkBuilder({ baseUrl: SITE, secrets: [CURRENT], trackingPath: '/t/daily/' });
    expect(custom.build('/x/', { campaign: 'c' })).toMatch(
      /^https:\/\/site\.example\/t\/daily\/\?\/x\/&c=c&s=/,
    );
  });

  it('is deterministic and binds every field', () => {
    const base = { campaign: 'Daily_Notification', recipientId: '42' };
    const links = new Set([
      builder.build(SEED_PATH, base),
      builder.build(SEED_PATH, { ...base, recipientId: '43' }),
      builder.build(SEED_PATH, { ...base, campaign: 'Weekly' }),
      builder.build(SEED_PATH, { ...base, content: 'a' }),
      builder.build(SEED_PATH, { ...base, term: 'a' }),
      builder.build(SEED_PATH, { ...base, messageKey: 'a' }),
      builder.build('/updates/other/', base),
    ]);
    expect(links.size).toBe(7);
    expect(builder.build(SEED_PATH, base)).toBe(builder.build(SEED_PATH, base));
  });

  it('refuses targets outside the allowlist and invalid parameters', () => {
    const strict = new LinkBuilder({
      baseUrl: SITE,
      secrets: [CURRENT],
      pathAllowlist: ['/updates/', /^\/p\/\d+$/],
    });
    expect(strict.build('/p/12', { campaign: 'c' })).toContain('?/p/12&');
    expect(() => strict.build('/admin/', { campaign: 'c' })).toThrow(TrackingLinkError);
    expect(() => strict.build('/updates/../admin/', { campaign: 'c' })).toThrow(/not-allowed/);
    expect(() => builder.build(SEED_PATH, { campaign: '' })).toThrow(/invalid campaign/);
    expect(() => builder.build(SEED_PATH, { campaign: 'c', recipientId: 'a\nb' })).toThrow(
      /invalid recipientId/,
    );
    expect(() => builder.build(SEED_PATH, { campaign: 'c'.repeat(201) })).toThrow(TrackingLinkError);
  });
});
