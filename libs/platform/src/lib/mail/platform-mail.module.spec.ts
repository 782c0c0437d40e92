import { adminMailSecrets, PlatformMailModule } from './platform-mail.module';

describe('adminMailSecrets', () => {
  const config = {
    NODE_ENV: 'production',
    AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY',
    ADMIN_TOKENS: ['admin-token-0123456789', 'admin-token-previous-99'],
    TRACKING_SECRETS: ['tracking-secret-0123456789abcdef0123456789'],
    DATABASE_URL: 'postgres://once:db%40pass-123@db:5432/once',
    REDIS_URL: 'redis://:redis-pass-456@cache:6379',
    SES_ENDPOINT: 'http://ses.local:8005',
    REDIS_KEY_PREFIX: 'once:',
    MAIL_FROM: 'digest@once.local',
  };

  it('collects secret-named variables (lists split) and URL passwords (decoded)', () => {
    expect(adminMailSecrets(config, () => undefined).sort()).toEqual(
      [
        'wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY',
        'admin-token-0123456789',
        'admin-token-previous-99',
        'tracking-secret-0123456789abcdef0123456789',
        'db@pass-123',
        'redis-pass-456',
      ].sort(),
    );
  });

  it('fails in production on a secret too short to hide, naming the variable and not the value', () => {
    const short = { ...config, DATABASE_URL: 'postgres://once:pw1@db:5432/once' };
    expect(() => adminMailSecrets(short, () => undefined)).toThrow(
      'DATABASE_URL: its password is shorter than 8 characters; admin error mail could not hide it',
    );
    expect(() => adminMailSecrets({ ...config, AWS_SECRET_ACCESS_KEY: 'test' }, () => undefined)).toThrow(
      /^AWS_SECRET_ACCESS_KEY: its value is shorter than 8 characters(?!.*test)/,
    );
  });

  it('outside production leaves a short secret out with a warning', () => {
    const warnings: string[] = [];
    const secrets = adminMailSecrets(
      { ...config, NODE_ENV: 'development', REDIS_URL: 'redis://:pw@cache:6379' },
      (message) => warnings.push(message),
    );
    expect(secrets).not.toContain('pw');
    expect(warnings).toEqual([
      'REDIS_URL: its password is shorter than 8 characters; admin error mail could not hide it, so it is not redacted (outside production only)',
    ]);
  });

  it('checks only when admin error mail is on', () => {
    const base = {
      ...config,
      AWS_REGION: 'us-east-1',
      AWS_SECRET_ACCESS_KEY: 'test',
      APP_VERSION: '1',
      MAIL_PER_RECIPIENT_PER_HOUR: 10,
    } as unknown as Parameters<typeof PlatformMailModule.forRoot>[1];
    expect(() => PlatformMailModule.forRoot('api', { ...base, ADMIN_EMAILS: [] })).not.toThrow();
    expect(() => PlatformMailModule.forRoot('api', { ...base, ADMIN_EMAILS: ['ops@example.com'] })).toThrow(
      /AWS_SECRET_ACCESS_KEY/,
    );
  });
});
