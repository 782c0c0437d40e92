import { z } from 'zod';
import { ConfigValidationError, loadConfig } from './config.loader';
import { databaseEnvSchema, redisEnvSchema } from './config.schemas';

describe('loadConfig', () => {
  const schema = databaseEnvSchema.extend(redisEnvSchema.shape).extend({ PORT: z.coerce.number().int() });

  it('applies defaults and coerces values', () => {
    const config = loadConfig('api', schema, { PORT: '3000', DATABASE_MIGRATE_ON_BOOT: 'yes' });
    expect(config).toMatchObject({
      PORT: 3000,
      DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/test',
      DATABASE_MIGRATE_ON_BOOT: true,
      REDIS_URL: 'redis://127.0.0.1:6379',
    });
  });

  it('names every invalid or missing variable', () => {
    let error: unknown;
    try {
      loadConfig('api', schema, { DATABASE_URL: 'mysql://x', REDIS_URL: 'redis://localhost' });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigValidationError);
    const message = (error as Error).message;
    expect(message).toContain('Invalid configuration for api');
    expect(message).toContain('DATABASE_URL: must be a postgres: or postgresql: URL');
    expect(message).toContain('PORT:');
    expect(message).not.toContain('REDIS_URL');
  });

  it('treats empty strings as unset', () => {
    expect(loadConfig('api', schema, { PORT: '1', REDIS_URL: '' }).REDIS_URL).toBe('redis://127.0.0.1:6379');
  });
});
