import { z } from 'zod';
import {
  awsEnvSchema,
  baseEnvSchema,
  booleanString,
  cronOrOff,
  databaseEnvSchema,
  dedupEnvSchema,
  refineDedupEnv,
  mailEnvSchema,
  queuesEnvSchema,
  redisEnvSchema,
  schedulesEnvSchema,
} from '@once/platform';

export const schedulerEnvSchema = baseEnvSchema
  .extend(databaseEnvSchema.shape)
  .extend(redisEnvSchema.shape)
  .extend(awsEnvSchema.shape)
  .extend(queuesEnvSchema.shape)
  .extend(mailEnvSchema.shape)
  .extend(dedupEnvSchema.shape)
  .extend(schedulesEnvSchema.shape)
  .extend({
    /** On start, enqueue the latest slot of each job if it fell while no scheduler was running. */
    SCHEDULER_CATCH_UP: booleanString.default(true),
    SCHEDULER_CATCH_UP_WINDOW_HOURS: z.coerce
      .number()
      .positive()
      .max(24 * 40)
      .default(24),
    /** How often catch-up runs again after boot (0: only at boot). */
    SCHEDULER_CATCH_UP_INTERVAL_MS: z.coerce.number().int().min(0).default(600_000),
    /** First delay before a failed enqueue is retried; doubles per attempt (jittered) up to the max. */
    SCHEDULER_RETRY_BASE_MS: z.coerce.number().int().min(10).default(1_000),
    SCHEDULER_RETRY_MAX_MS: z.coerce.number().int().min(10).default(300_000),
    /** When expired dedup records are deleted from Postgres (hourly by default), or `off`. */
    DEDUP_PURGE_CRON: cronOrOff.default('0 * * * *'),
    /** Port of the scheduler's /health and /metrics endpoints. */
    OPS_PORT: z.coerce.number().int().min(0).max(65535).default(9102),
  })
  .superRefine(refineDedupEnv);

export type SchedulerConfig = z.infer<typeof schedulerEnvSchema>;
