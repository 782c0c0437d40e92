/* eslint-disable @nx/enforce-module-boundaries -- this system test boots the three real apps in one process */
import { INestApplication, INestApplicationContext } from '@nestjs/common';
import { getDataSourceToken } from '@nestjs/typeorm';
import { seedUsers } from '@once/platform';
import { DataSource } from 'typeorm';
import { bootstrap as bootstrapApi } from '../../../api/src/bootstrap';
import { bootstrap as bootstrapScheduler } from '../../../scheduler/src/bootstrap';
export { CronJobsRegistrar } from '../../../scheduler/src/jobs/cron-jobs.registrar';
import { bootstrap as bootstrapWorker } from '../../../worker/src/bootstrap';
/* eslint-enable @nx/enforce-module-boundaries */

export interface InProcessPlatform {
  api: INestApplication;
  worker: INestApplicationContext;
  scheduler: INestApplicationContext;
  dataSource: DataSource;
  close(): Promise<void>;
}

/**
 * Boots api, worker and scheduler in this process on the e2e run's real services, with `users`
 * seeded and the scheduler's own crons off (tests fire slots through CronJobsRegistrar).
 */
export async function bootInProcessPlatform(options: {
  users: number;
  apiEnv?: Record<string, string>;
}): Promise<InProcessPlatform> {
  const api = await bootstrapApi({
    env: { PORT: '0', DATABASE_MIGRATE_ON_BOOT: 'true', ...options.apiEnv },
  });
  const dataSource = api.get<DataSource>(getDataSourceToken());
  await seedUsers(dataSource, options.users);
  const worker = await bootstrapWorker({ env: { SQS_WAIT_TIME_SECONDS: '1', OPS_PORT: '0' } });
  const scheduler = await bootstrapScheduler({
    env: { DIGEST_CRON: 'off', REMINDER_CRON: 'off', SCHEDULER_CATCH_UP: 'false', OPS_PORT: '0' },
  });
  return {
    api,
    worker,
    scheduler,
    dataSource,
    async close() {
      await scheduler.close();
      await worker.close();
      await api.close();
    },
  };
}
