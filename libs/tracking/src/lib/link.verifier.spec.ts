import { LinkBuilder } from './link.builder';
import { signLink } from './link.signer';
import { LinkVerifier } from './link.verifier';

const SITE = 'https://site.example';
const OLD = 'old-secret-0123456789abcdef0123456789';
const NEW = 'new-secret-0123456789abcdef0123456789';
const SEED_PATH = '/updates/haml-3.1.2/haml-3.2.0.rc.3/11765/';
const SEED_UTM = 'utm_source=email&utm_medium=email&utm_campaign=Daily_Notification';

describe('LinkVerifier', () => {
  const builder = new LinkBuilder({ baseUrl: SITE, secrets: [NEW, OLD] });
  const verifier = new LinkVerifier({ baseUrl: SITE, secrets: [NEW, OLD] });
  const seedLink = builder.build(SEED_PATH, { campaign: 'Daily_Notification', recipientId: 42 });

  it("round-trips the seed's example to the seed's redirect", () => {
    expect(verifier.verify(seedLink)).toEqual({
      ok: true,
      link: { target: SEED_PATH, campaign: 'Daily_Notification', recipientId: '42', pathname: SEED_PATH },
      location: `${SITE}${SEED_PATH}?${SEED_UTM}`,
    });
  });

  it('accepts the link as a URL, a request target, or a bare query, and ignores a fragment and unknown parameters', () => {
    const query = seedLink.slice(seedLink.indexOf('?'));
    const expected = verifier.verify(seedLink);
    expect(verifier.verify(new URL(seedLink))).toEqual(expected);
    expect(verifier.verify(`/daily/${query}`)).toEqual(expected);
    expect(verifier.verifyQuery(query)).toEqual(expected);
    expect(verifier.verifyQuery(query.slice(1))).toEqual(expected);
    expect(verifier.verify(`${seedLink}#top`)).toEqual(expected);
    expect(verifier.verify(`${seedLink}&fbclid=abc&utm_source=evil`)).toEqual(expected);
  });

  it('accepts equivalent percent-encodings of the target', () => {
    const link = builder.build('/updates/~x/', { campaign: 'c' });
    expect(verifier.verify(link.replace('/~x/', '/%7Ex/')).ok).toBe(true);
  });

  it('refuses unsigned links, such as the seed’s own', () => {
    expect(verifier.verify(`${SITE}/daily/?${SEED_PATH}`)).toEqual({ ok: false, reason: 'unsigned' });
    expect(verifier.verify(`${SITE}/daily/?${SEED_PATH}&c=Daily_Notification&s=`)).toEqual({
      ok: false,
      reason: 'unsigned',
    });
    expect(verifier.verify(`${SITE}/daily/`)).toEqual({ ok: false, reason: 'unsigned' });
  });

  it('refuses every single-character change of the signature', () => {
    const signature = seedLink.slice(seedLink.lastIndexOf('=') + 1);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    let tried = 0;
    for (let i = 0; i < signature.length; i++) {
      const other = alphabet[(alphabet.indexOf(signature[i]) + 1) % alphabet.length];
      const tampered = `${seedLink.slice(0, -signature.length)}${signature.slice(0, i)}${other}${signature.slice(i + 1)}`;
      expect(verifier.verify(tampered)).toEqual({ ok: false, reason: 'bad-signature' });
      tried++;
    }
    expect(tried).toBe(22);
    expect(verifier.verify(seedLink.slice(0, -1))).toEqual({ ok: false, reason: 'bad-signature' });
    expect(verifier.verify(`${seedLink}A`)).toEqual({ ok: false, reason: 'bad-signature' });
  });

  it('refuses swapped, added, dropped or altered fields', () => {
    const link = builder.build(SEED_PATH, {
      campaign: 'Daily_Notification',
      recipientId: '42',
      content: 'top',
    });
    const other = builder.build(SEED_PATH, { campaign: 'Weekly', recipientId: '7', content: 'top' });
    const signatureOf = (url: string) => url.slice(url.lastIndexOf('&s='));
    const variants = [
      link.replace('&r=42', '&r=7'),
      link.replace('c=Daily_Notification', 'c=Weekly'),
      link.replace('c=Daily_Notification', 'c=Daily_Notification_'),
      link.replace('&r=42', ''),
      link.replace('&ct=top', ''),
      link.replace('&ct=top', '&ct=top&t=x'),
      link.replace('&ct=top', '&m=key'),
      link.replace(SEED_PATH, '/updates/haml-3.1.2/haml-3.2.0.rc.3/11766/'),
      link.replace(SEED_PATH, `${SEED_PATH}?x=1`),
      other.replace(signatureOf(other), signatureOf(link)),
    ];
    for (const variant of variants)
      expect(verifier.verify(variant)).toEqual({ ok: false, reason: 'bad-signature' });
  });

  it('refuses duplicated link parameters and a missing campaign as malformed', () => {
    expect(verifier.verify(seedLink.replace('&r=42', '&r=42&r=7'))).toEqual({
      ok: false,
      reason: 'malformed',
    });
    expect(verifier.verify(`${seedLink}&s=${'A'.repeat(22)}`)).toEqual({ ok: false, reason: 'malformed' });
    expect(verifier.verify(seedLink.replace('c=Daily_Notification&', ''))).toEqual({
      ok: false,
      reason: 'malformed',
    });
    expect(verifier.verify(seedLink.replace('/updates/', '/updates/%E0%A4%A'))).toEqual({
      ok: false,
      reason: 'malformed',
    });
  });

  describe('secret rotation', () => {
    const oldBuilder = new LinkBuilder({ baseUrl: SITE, secrets: [OLD] });
    const oldLink = oldBuilder.build(SEED_PATH, { campaign: 'Daily_Notification', recipientId: 42 });

    it('still verifies links signed with a previous secret', () => {
      expect(oldLink).not.toBe(seedLink);
      expect(verifier.verify(oldLink)).toMatchObject({
        ok: true,
        location: `${SITE}${SEED_PATH}?${SEED_UTM}`,
      });
    });

    it('signs new links with the current secret, and refuses old links once their secret is retired', () => {
      const onlyNew = new LinkVerifier({ baseUrl: SITE, secrets: [NEW] });
      const onlyOld = new LinkVerifier({ baseUrl: SITE, secrets: [OLD] });
      expect(onlyNew.verify(seedLink).ok).toBe(true);
      expect(onlyOld.verify(seedLink)).toEqual({ ok: false, reason: 'bad-signature' });
      expect(onlyNew.verify(oldLink)).toEqual({ ok: false, reason: 'bad-signature' });
    });
  });

  it('checks the target even when the signature is valid', () => {
    const strict = new LinkVerifier({ baseUrl: SITE, secrets: [NEW], pathAllowlist: ['/updates/'] });
    expect(strict.verify(seedLink).ok).toBe(true);
    expect(strict.verify(builder.build('/admin/users', { campaign: 'c' }))).toEqual({
      ok: false,
      reason: 'not-allowed',
    });
    const offSite = `?//evil.com&c=c&s=${signLink(NEW, { target: '//evil.com', campaign: 'c' })}`;
    expect(verifier.verifyQuery(offSite)).toEqual({ ok: false, reason: 'off-site' });
  });

  it('merges UTM: link campaign/content/term override defaults, the target’s own utm_* and fragment are kept', () => {
    const custom = new LinkVerifier({
      baseUrl: SITE,
      secrets: [NEW],
      defaultUtm: { source: 'newsletter', medium: 'email', content: 'default', id: 'd1' },
    });
    const link = builder.build('/updates/x/?page=2&utm_medium=push#changes', {
      campaign: 'Daily',
      term: 'haml',
    });
    expect(custom.verify(link)).toMatchObject({
      ok: true,
      location: `${SITE}/updates/x/?page=2&utm_medium=push&utm_source=newsletter&utm_campaign=Daily&utm_content=default&utm_term=haml&utm_id=d1#changes`,
    });
  });

  it('exposes the invalid-link settings', () => {
    expect(verifier.rootUrl).toBe(`${SITE}/`);
    expect(verifier.invalidLinkBehaviour).toBe('error-page');
    expect(
      new LinkVerifier({ baseUrl: SITE, secrets: [NEW], invalidLinkBehaviour: 'redirect-root' })
        .invalidLinkBehaviour,
    ).toBe('redirect-root');
  });
});
