import { loadConfig } from './config.loader';
import { baseEnvSchema, dedupEnvSchema } from './config.schemas';
import { DEVELOPMENT_SECRETS, forbidDevelopmentSecrets } from './development-secrets';
import { trackingEnvSchema } from './tracking-env.schema';

const schema = baseEnvSchema
  .extend(dedupEnvSchema.shape)
  .extend(trackingEnvSchema.shape)
  .superRefine(forbidDevelopmentSecrets);

const ownSecret = { TRACKING_SECRETS: 'a-secret-of-our-own-that-is-long-enough-0123456789' };

describe('forbidDevelopmentSecrets', () => {
  it('treats an unset NODE_ENV as production and refuses the development secret', () => {
    expect(() => loadConfig('worker', schema, {})).toThrow(
      /TRACKING_SECRETS: must be set to a secret of your own in production/,
    );
  });

  it('accepts the development secret when NODE_ENV says development or test', () => {
    for (const NODE_ENV of ['development', 'test']) {
      expect(loadConfig('worker', schema, { NODE_ENV }).TRACKING_SECRETS).toContain(
        DEVELOPMENT_SECRETS.TRACKING_SECRETS,
      );
    }
  });

  it('refuses DEDUP_ENABLED=false and LOG_PRETTY=true in production only', () => {
    const off = { ...ownSecret, DEDUP_ENABLED: 'false', LOG_PRETTY: 'true' };
    let message = '';
    try {
      loadConfig('worker', schema, { ...off, NODE_ENV: 'production' });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/DEDUP_ENABLED: must not be false in production/);
    expect(message).toMatch(/LOG_PRETTY: is for development only/);
    expect(loadConfig('worker', schema, { ...off, NODE_ENV: 'test' }).DEDUP_ENABLED).toBe(false);
    expect(loadConfig('worker', schema, ownSecret).NODE_ENV).toBe('production');
  });
});
