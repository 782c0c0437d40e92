import { parsePublicTrackingOptions, parseTrackingOptions, TrackingOptionsError } from './tracking.options';

const SECRET = 'a-secret-of-at-least-thirty-two-chars!';

function issuesOf(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(TrackingOptionsError);
    return (error as Error).message;
  }
  throw new Error('expected the options to be refused');
}

describe('parseTrackingOptions', () => {
  it('fills in defaults and normalises the base URL to an origin', () => {
    expect(parseTrackingOptions({ baseUrl: 'https://Site.Example/', secrets: [SECRET] })).toEqual({
      baseUrl: 'https://site.example',
      trackingPath: '/daily/',
      secrets: [SECRET],
      defaultUtm: { source: 'email', medium: 'email' },
      invalidLinkBehaviour: 'error-page',
      clickRecorder: { batchSize: 200, flushIntervalMs: 100, maxBuffered: 10_000 },
      refusedLinks: { logIntervalMs: 10_000 },
    });
  });

  it('is idempotent', () => {
    const once = parseTrackingOptions({
      baseUrl: 'http://localhost:3000',
      secrets: [SECRET],
      pathAllowlist: [/^\/u\//],
    });
    expect(parseTrackingOptions(once)).toEqual(once);
  });

  it('names each bad field and never echoes a secret', () => {
    const message = issuesOf(() =>
      parseTrackingOptions({
        baseUrl: 'javascript:alert(1)',
        secrets: ['short-secret-value'],
        trackingPath: '/daily',
        pathAllowlist: ['updates/'],
        invalidLinkBehaviour: 'redirect' as 'error-page',
      }),
    );
    expect(message).toContain('baseUrl');
    expect(message).toContain('secrets.0: each secret needs at least 32 characters');
    expect(message).toContain('trackingPath');
    expect(message).toContain('pathAllowlist.0');
    expect(message).toContain('invalidLinkBehaviour');
    expect(message).not.toContain('short-secret-value');
  });

  it.each([
    'https://site.example/app',
    'https://site.example/?x=1',
    'https://user:pw@site.example',
    'ftp://site.example',
  ])('refuses base URL %s', (baseUrl) => {
    expect(issuesOf(() => parseTrackingOptions({ baseUrl, secrets: [SECRET] }))).toContain('baseUrl');
  });

  it('refuses no secrets and misspelt keys (a dropped allowlist would fail open)', () => {
    expect(issuesOf(() => parseTrackingOptions({ baseUrl: 'https://s.example', secrets: [] }))).toContain(
      'at least one secret is required',
    );
    const typo = { baseUrl: 'https://s.example', secrets: [SECRET], pathAllowList: ['/x/'] };
    expect(issuesOf(() => parseTrackingOptions(typo as never))).toContain('pathAllowList');
  });

  it('refuses secrets in the public (static page) options', () => {
    const withSecret = { baseUrl: 'https://s.example', secrets: [SECRET] };
    expect(issuesOf(() => parsePublicTrackingOptions(withSecret as never))).toContain('secrets');
  });
});
