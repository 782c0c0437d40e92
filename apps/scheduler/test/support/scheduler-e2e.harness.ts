import type { INestApplicationContext } from '@nestjs/common';
import { type JobMessage, jobMessageSchema } from '@once/platform';
import { drain, e2eQueueUrl, testSqsClient } from '@once/testing';
import { bootstrap } from '../../src/bootstrap';

/** Every job off, no catch-up, an OS-chosen ops port: a test turns on only what it exercises. */
export const QUIET_SCHEDULER_ENV = {
  DIGEST_CRON: 'off',
  REMINDER_CRON: 'off',
  SCHEDULER_CATCH_UP: 'false',
  OPS_PORT: '0',
};

/**
 * Boots schedulers for one e2e file. Call `nextRun()` before each test: every test gets its own
 * Redis namespace (`<namespace><run>:`) so periods enqueued by one test do not collapse another's.
 */
export function schedulerHarness(namespace: string) {
  const sqs = testSqsClient();
  const running: INestApplicationContext[] = [];
  let run = 0;
  return {
    sqs,
    nextRun: () => void run++,
    async boot(env: Record<string, string>): Promise<INestApplicationContext> {
      const app = await bootstrap({
        env: {
          ...QUIET_SCHEDULER_ENV,
          REDIS_KEY_PREFIX: `${process.env['REDIS_KEY_PREFIX']}${namespace}${run}:`,
          ...env,
        },
      });
      running.push(app);
      return app;
    },
    stopAll: () => Promise.all(running.splice(0).map((app) => app.close())),
    /** Takes every job message on the shared jobs queue. */
    jobsOnQueue: async (): Promise<JobMessage[]> =>
      (await drain(sqs, e2eQueueUrl('once-jobs'), 0)).map((m) =>
        jobMessageSchema.parse(JSON.parse(m.Body ?? '')),
      ),
  };
}
