import { DEVELOPMENT_SECRETS, trackingEnvSchema, trackingOptionsFromEnv } from '@once/platform';
import { DailyModule } from './daily.module';

const CURRENT = 'current-secret-0123456789abcdef0123';
const PREVIOUS = 'previous-secret-0123456789abcdef012';

describe('daily config', () => {
  it('maps the environment to tracking options', () => {
    const env = trackingEnvSchema.parse({
      TRACKING_BASE_URL: 'https://site.example',
      TRACKING_SECRETS: ` ${CURRENT}, ${PREVIOUS} `,
      TRACKING_PATH_ALLOWLIST: '/updates/, /projects/',
      TRACKING_INVALID_LINK: 'redirect-root',
      TRACKING_CLICK_FLUSH_MS: '250',
      TRACKING_REFUSED_LOG_INTERVAL_MS: '5000',
    });
    expect(trackingOptionsFromEnv(env)).toEqual({
      baseUrl: 'https://site.example',
      secrets: [CURRENT, PREVIOUS],
      pathAllowlist: ['/updates/', '/projects/'],
      invalidLinkBehaviour: 'redirect-root',
      defaultUtm: { source: 'email', medium: 'email' },
      clickRecorder: { flushIntervalMs: 250, batchSize: 200 },
      refusedLinks: { logIntervalMs: 5000 },
    });
    expect(() => DailyModule.forRoot(trackingOptionsFromEnv(env))).not.toThrow();
  });

  it('refuses short secrets without echoing them', () => {
    const result = trackingEnvSchema.safeParse({
      TRACKING_BASE_URL: 'https://site.example',
      TRACKING_SECRETS: 'too-short-secret',
    });
    expect(result.success).toBe(false);
    const text = JSON.stringify(result.error?.issues);
    expect(text).toContain('each secret needs at least 32 characters');
    expect(text).not.toContain('too-short-secret');
  });

  it('requires a valid base URL and at least one secret', () => {
    const result = trackingEnvSchema.safeParse({ TRACKING_BASE_URL: 'ftp://site', TRACKING_SECRETS: ' , ' });
    expect(result.error?.issues.map((issue) => issue.path.join('.')).sort()).toEqual([
      'TRACKING_BASE_URL',
      'TRACKING_SECRETS',
    ]);
  });

  it('defaults to the local site and the development secret (refused in production by the apps)', () => {
    expect(trackingEnvSchema.parse({})).toMatchObject({
      TRACKING_BASE_URL: 'http://127.0.0.1:3000',
      TRACKING_SECRETS: [DEVELOPMENT_SECRETS.TRACKING_SECRETS],
    });
  });
});
