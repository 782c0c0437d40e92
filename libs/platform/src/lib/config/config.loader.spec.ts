import { inspect } from 'node:util';
import { z } from 'zod';
import { ConfigValidationError, loadConfig } from './config.loader';
import {
  awsEnvSchema,
  baseEnvSchema,
  databaseEnvSchema,
  dedupEnvSchema,
  mailEnvSchema,
  queuesEnvSchema,
  redisEnvSchema,
  refineDedupEnv,
} from './config.schemas';
import { trackingEnvSchema } from './tracking-env.schema';

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

  describe('DEDUP_REDIS_CLUSTER_NODES', () => {
    // As the apps build theirs: the DEDUP_* shape, then the refinement across variables.
    const appSchema = baseEnvSchema.extend(dedupEnvSchema.shape).superRefine(refineDedupEnv);
    const refused = (env: Record<string, string>): ConfigValidationError => {
      try {
        loadConfig('worker', appSchema, env);
      } catch (error) {
        if (error instanceof ConfigValidationError) return error;
        throw error;
      }
      throw new Error(`expected ${JSON.stringify(env)} to be refused`);
    };

    it('leaves dedup on REDIS_URL when unset or empty', () => {
      expect(loadConfig('worker', appSchema, {}).DEDUP_REDIS_CLUSTER_NODES).toBeUndefined();
      expect(
        loadConfig('worker', appSchema, { DEDUP_REDIS_CLUSTER_NODES: '' }).DEDUP_REDIS_CLUSTER_NODES,
      ).toBeUndefined();
    });

    it('gives the parsed seeds with DEDUP_STORE redis or redis+postgres', () => {
      for (const store of ['redis', 'redis+postgres'])
        expect(
          loadConfig('worker', appSchema, {
            DEDUP_STORE: store,
            DEDUP_REDIS_CLUSTER_NODES: '10.0.0.1:7000,10.0.0.2:7000',
          }).DEDUP_REDIS_CLUSTER_NODES,
        ).toEqual([
          { host: '10.0.0.1', port: 7000 },
          { host: '10.0.0.2', port: 7000 },
        ]);
    });

    it('fails boot naming both variables when DEDUP_STORE is postgres', () => {
      const error = refused({ DEDUP_STORE: 'postgres', DEDUP_REDIS_CLUSTER_NODES: '10.0.0.1:7000' });
      expect(error.issues).toEqual([
        expect.stringMatching(/^DEDUP_REDIS_CLUSTER_NODES: needs DEDUP_STORE redis or redis\+postgres/),
      ]);
      expect(error.message).toContain('Invalid configuration for worker');
    });

    it('fails boot naming the variable for a bad seed list, with every problem at once', () => {
      const error = refused({ DEDUP_REDIS_CLUSTER_NODES: '10.0.0.1:7000,,10.0.0.1:7000,10.0.0.3:99999' });
      expect(error.issues).toEqual([
        'DEDUP_REDIS_CLUSTER_NODES: entry 2 of 4 is empty',
        'DEDUP_REDIS_CLUSTER_NODES: entry 3 of 4 repeats entry 1',
        'DEDUP_REDIS_CLUSTER_NODES: entry 4 of 4 has a port outside 1-65535',
      ]);
    });
  });

  describe('URL variables', () => {
    // Every URL-ish variable an app reads (the apps' schemas extend these shapes).
    const everything = baseEnvSchema
      .extend(databaseEnvSchema.shape)
      .extend(redisEnvSchema.shape)
      .extend(awsEnvSchema.shape)
      .extend(queuesEnvSchema.shape)
      .extend(mailEnvSchema.shape)
      .extend(dedupEnvSchema.shape)
      .extend(trackingEnvSchema.shape);

    const failure = (env: Record<string, string>): ConfigValidationError => {
      try {
        loadConfig('api', everything, { NODE_ENV: 'test', ...env });
      } catch (error) {
        if (error instanceof ConfigValidationError) return error;
        throw new Error(`expected a ConfigValidationError, got ${inspect(error)}`);
      }
      throw new Error(`expected ${JSON.stringify(Object.keys(env))} to be refused`);
    };

    const NOT_A_URL = 'not a valid URL';
    const cases: Array<[string, string, string]> = [
      ['DATABASE_URL', 'not a url', NOT_A_URL],
      ['DATABASE_URL', 'postgres://once:Pa55-w0rd@db.internal:99999/once', NOT_A_URL],
      ['DATABASE_URL', 'postgres://once:Pa55-w0rd@[db.internal]/once', NOT_A_URL],
      ['DATABASE_URL', 'mysql://once:Pa55-w0rd@db.internal/once', 'must be a postgres: or postgresql: URL'],
      ['DATABASE_URL', 'db.internal:5432', 'must be a postgres: or postgresql: URL'],
      ['REDIS_URL', 'redis//127.0.0.1:6379', NOT_A_URL],
      ['REDIS_URL', 'rediss://:Pa55-w0rd@cache:70000', NOT_A_URL],
      ['REDIS_URL', 'http://cache:6379', 'must be a redis: or rediss: URL'],
      ['SQS_ENDPOINT', 'http://', NOT_A_URL],
      ['SQS_ENDPOINT', 'localhost:4566', 'must be an http: or https: URL'],
      ['SES_ENDPOINT', 'http://[::1', NOT_A_URL],
      ['SES_ENDPOINT', 'ftp://127.0.0.1:8005', 'must be an http: or https: URL'],
      ['TRACKING_BASE_URL', 'difio.example', NOT_A_URL],
      ['TRACKING_BASE_URL', 'ftp://difio.example', 'must be an http: or https: URL'],
      ['TRACKING_BASE_URL', 'https://difio.example/updates/', 'must be an origin only'],
      ['TRACKING_BASE_URL', 'https://user:Pa55-w0rd@difio.example', 'must be an origin only'],
      ['SQS_JOBS_QUEUE', 'http://127.0.0.1:99999/000000000000/once-jobs', NOT_A_URL],
      ['SQS_JOBS_QUEUE', 'ftp://127.0.0.1/000000000000/once-jobs', 'must be an http: or https: URL'],
      ['SQS_EMAIL_QUEUE', 'https:/sqs.us-east-1.amazonaws.com/1/once', 'must be an http: or https: URL'],
      ['SQS_EMAIL_QUEUE', 'once send email', 'must be a queue name'],
      ['SQS_EMAIL_QUEUE', 'x'.repeat(81), 'must be a queue name'],
    ];

    it.each(cases)('refuses %s=%j, naming the variable and the problem', (name, value, problem) => {
      const error = failure({ [name]: value });
      expect(error.message).toContain(`${name}: ${problem}`);
      expect(error.issues).toHaveLength(1);
    });

    it('never repeats a refused value, which may hold a password', () => {
      for (const [name, value] of cases) {
        const error = failure({ [name]: value });
        for (const shown of [error.message, inspect(error, { depth: 10 }), JSON.stringify(error)]) {
          expect(shown).not.toContain('Pa55-w0rd');
          if (value.length > 8) expect(shown).not.toContain(value);
        }
      }
    });

    it('names every bad URL variable at once', () => {
      const error = failure({
        DATABASE_URL: 'nope',
        REDIS_URL: 'nope',
        SQS_ENDPOINT: 'nope',
        SES_ENDPOINT: 'nope',
        TRACKING_BASE_URL: 'nope',
      });
      expect(error.issues).toEqual([
        `DATABASE_URL: ${NOT_A_URL}`,
        `REDIS_URL: ${NOT_A_URL}`,
        `SQS_ENDPOINT: ${NOT_A_URL}`,
        `SES_ENDPOINT: ${NOT_A_URL}`,
        `TRACKING_BASE_URL: ${NOT_A_URL}`,
      ]);
    });

    it('accepts the URLs the apps run with', () => {
      const config = loadConfig('api', everything, {
        NODE_ENV: 'test',
        DATABASE_URL: 'postgresql://once:p%40ss@db.internal:5432/once?sslmode=require',
        REDIS_URL: 'rediss://:secret@cache.internal:6380/2',
        SQS_ENDPOINT: 'http://127.0.0.1:4566',
        SES_ENDPOINT: 'https://email.eu-west-1.amazonaws.com',
        TRACKING_BASE_URL: 'https://difio.example/',
        SQS_JOBS_QUEUE: 'https://sqs.eu-west-1.amazonaws.com/123456789012/once-jobs.fifo',
        SQS_EMAIL_QUEUE: 'once_send-email.fifo',
      });
      expect(config).toMatchObject({
        DATABASE_URL: 'postgresql://once:p%40ss@db.internal:5432/once?sslmode=require',
        TRACKING_BASE_URL: 'https://difio.example/',
        SQS_EMAIL_QUEUE: 'once_send-email.fifo',
      });
    });
  });
});
