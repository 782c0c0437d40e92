import { SQSClient } from '@aws-sdk/client-sqs';
import { loadConfig } from '../src/lib/config/config.loader';
import { awsEnvSchema } from '../src/lib/config/config.schemas';
import { createDataSource } from '../src/lib/database/database.module';
import { PLATFORM_ENTITIES, PLATFORM_MIGRATIONS } from '../src/lib/database/platform.migrations';
import { createSqsClient, resolveQueueUrl } from '../src/lib/sqs/sqs-client.factory';
import { seedUsers } from '../src/lib/users/users.seed';

describe('platform infrastructure against real services', () => {
  it('migrates Postgres and seeds users idempotently', async () => {
    const dataSource = createDataSource({
      url: process.env.DATABASE_URL!,
      poolSize: 2,
      migrateOnBoot: false,
      entities: PLATFORM_ENTITIES,
      migrations: PLATFORM_MIGRATIONS,
      applicationName: 'platform-e2e',
    });
    await dataSource.initialize();
    try {
      await dataSource.runMigrations();
      expect(await seedUsers(dataSource, 5)).toBe(5);
      expect(await seedUsers(dataSource, 7)).toBe(7);
      const rows = await dataSource.query('SELECT email FROM users ORDER BY id LIMIT 1');
      expect(rows).toEqual([{ email: 'user1@example.com' }]);
    } finally {
      await dataSource.destroy();
    }
  });

  it('resolves queue names through the emulator with an explicit endpoint', async () => {
    const sqs: SQSClient = createSqsClient(loadConfig('test', awsEnvSchema));
    try {
      const urls = JSON.parse(process.env.E2E_QUEUE_URLS!) as Record<string, string>;
      await expect(resolveQueueUrl(sqs, 'once-jobs')).resolves.toBe(urls['once-jobs']);
      await expect(resolveQueueUrl(sqs, 'https://example.com/q')).resolves.toBe('https://example.com/q');
      await expect(resolveQueueUrl(sqs, 'no-such-queue')).rejects.toThrow(
        'Cannot resolve SQS queue "no-such-queue"',
      );
    } finally {
      sqs.destroy();
    }
  });
});
