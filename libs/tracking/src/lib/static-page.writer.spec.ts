import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runInNewContext } from 'node:vm';
import { LinkBuilder } from './link.builder';
import {
  renderStaticRedirectPage,
  STATIC_PAGE_SCRIPT_HASH,
  writeStaticRedirectPage,
} from './static-page.writer';
import { PublicTrackingOptions } from './tracking.options';

const SITE = 'https://site.example';
const SEED_PATH = '/updates/haml-3.1.2/haml-3.2.0.rc.3/11765/';

function parts(html: string) {
  const script = /<script>([\s\S]*)<\/script>/.exec(html)?.[1] ?? '';
  const config =
    /<script type="application\/json" id="once-tracking-config">([\s\S]*?)<\/script>/.exec(html)?.[1] ?? '';
  return { script, config };
}

/** Runs the page's script as a browser would, against `search`; returns where it went. */
function open(options: PublicTrackingOptions, search: string) {
  const { script, config } = parts(renderStaticRedirectPage(options));
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

describe('static redirect page', () => {
  const options = {
    baseUrl: SITE,
    defaultUtm: { source: 'email', medium: 'email', campaign: 'Daily_Notification' },
  };

  it("redirects the seed's unsigned link like the seed did", () => {
    expect(open(options, `?${SEED_PATH}`)).toEqual({
      replaced: [`${SITE}${SEED_PATH}?utm_source=email&utm_medium=email&utm_campaign=Daily_Notification`],
      invalidShown: false,
    });
  });

  it('follows signed links too (ignoring the signature) and merges UTM like the server', () => {
    const builder = new LinkBuilder({ baseUrl: SITE, secrets: ['s'.repeat(32)] });
    const link = builder.build('/updates/x/?page=2&utm_source=rss#top', {
      campaign: 'Weekly',
      content: 'hero',
      recipientId: 1,
    });
    expect(open(options, link.slice(link.indexOf('?'))).replaced).toEqual([
      `${SITE}/updates/x/?page=2&utm_source=rss&utm_medium=email&utm_campaign=Weekly&utm_content=hero#top`,
    ]);
  });

  it('applies the allowlist (strings and patterns) and the invalid-link behaviour', () => {
    const strict = {
      baseUrl: SITE,
      pathAllowlist: ['/updates/', /^\/p\/\d+$/],
      invalidLinkBehaviour: 'redirect-root' as const,
    };
    expect(open(strict, '?/p/12&c=x').replaced).toEqual([
      `${SITE}/p/12?utm_source=email&utm_medium=email&utm_campaign=x`,
    ]);
    expect(open(strict, '?/admin/&c=x')).toEqual({ replaced: [`${SITE}/`], invalidShown: false });
    expect(open(strict, '?//evil.com&c=x')).toEqual({ replaced: [`${SITE}/`], invalidShown: false });
    expect(open({ baseUrl: SITE }, '?/updates/&c=x&c=y')).toEqual({ replaced: [], invalidShown: true });
  });

  it('contains no secret and pins its script with a CSP hash', () => {
    const html = renderStaticRedirectPage(options);
    const { script, config } = parts(html);
    expect(`'sha256-${createHash('sha256').update(script).digest('base64')}'`).toBe(STATIC_PAGE_SCRIPT_HASH);
    expect(html).toContain(`script-src ${STATIC_PAGE_SCRIPT_HASH}`);
    expect(html).toContain('<meta name="referrer" content="no-referrer">');
    expect(Object.keys(JSON.parse(config)).sort()).toEqual([
      'allow',
      'invalid',
      'maxTargetLength',
      'origin',
      'utm',
    ]);
    expect(() => renderStaticRedirectPage({ ...options, secrets: ['s'.repeat(32)] } as never)).toThrow(
      /secrets/,
    );
  });

  it('cannot be broken out of by configured values', () => {
    const html = renderStaticRedirectPage({
      baseUrl: SITE,
      defaultUtm: { campaign: '</script><script>alert(1)</script>' },
    });
    expect(html.match(/<script/g)).toHaveLength(2);
    expect(JSON.parse(parts(html).config).utm.campaign).toBe('</script><script>alert(1)</script>');
  });

  it('writes <out>/daily/index.html', async () => {
    const out = await mkdtemp(join(tmpdir(), 'once-static-'));
    try {
      const file = await writeStaticRedirectPage(out, options);
      expect(file).toBe(join(out, 'daily', 'index.html'));
      expect(await readFile(file, 'utf8')).toBe(renderStaticRedirectPage(options));
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });
});
