import { CronTime } from 'cron';
import { z } from 'zod';
import {
  awsEnvSchema,
  baseEnvSchema,
  booleanString,
  databaseEnvSchema,
  dedupEnvSchema,
  mailEnvSchema,
  queuesEnvSchema,
  redisEnvSchema,
} from '@once/platform';

/** A cron expression (5 or 6 fields, validated by the cron package) or `off`. */
const cronOrOff = z.string().refine(
  (value) => {
    if (value === 'off') return true;
    try {
      new CronTime(value);
      return true;
    } catch {
      return false;
    }
  },
  { message: 'must be a cron expression (e.g. "0 7 * * *") or "off"' },
);

export const schedulerEnvSchema = baseEnvSchema
  .extend(databaseEnvSchema.shape)
  .extend(redisEnvSchema.shape)
  .extend(awsEnvSchema.shape)
  .extend(queuesEnvSchema.shape)
  .extend(mailEnvSchema.shape)
  .extend(dedupEnvSchema.shape)
  .extend({
    DIGEST_CRON: cronOrOff.default('0 7 * * *'),
    /** The seed's cron_monthly_email_reminder. */
    REMINDER_CRON: cronOrOff.default('0 9 1 * *'),
    SCHEDULER_TIMEZONE: z.string().default('UTC'),
    /** On start, enqueue the latest slot of each job if it fell while no scheduler was running. */
    SCHEDULER_CATCH_UP: booleanString.default(true),
    SCHEDULER_CATCH_UP_WINDOW_HOURS: z.coerce
      .number()
      .positive()
      .max(24 * 40)
      .default(24),
    /** When expired dedup records are deleted from Postgres (hourly by default), or `off`. */
    DEDUP_PURGE_CRON: cronOrOff.default('0 * * * *'),
    /** Port of the scheduler's /health and /metrics endpoints. */
    OPS_PORT: z.coerce.number().int().min(0).max(65535).default(9102),
  });

export type SchedulerConfig = z.infer<typeof schedulerEnvSchema>;
