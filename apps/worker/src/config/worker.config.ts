import { z } from 'zod';
import {
  awsEnvSchema,
  baseEnvSchema,
  databaseEnvSchema,
  dedupEnvSchema,
  refineDedupEnv,
  forbidDevelopmentSecrets,
  mailEnvSchema,
  queuesEnvSchema,
  redisEnvSchema,
  trackingEnvSchema,
} from '@once/platform';

export const workerEnvSchema = baseEnvSchema
  .extend(databaseEnvSchema.shape)
  .extend(redisEnvSchema.shape)
  .extend(awsEnvSchema.shape)
  .extend(queuesEnvSchema.shape)
  .extend(mailEnvSchema.shape)
  .extend(dedupEnvSchema.shape)
  .extend(trackingEnvSchema.shape)
  .extend({
    /** Messages per ReceiveMessage call (SQS allows 1–10). */
    SQS_BATCH_SIZE: z.coerce.number().int().min(1).max(10).default(10),
    SQS_WAIT_TIME_SECONDS: z.coerce.number().int().min(0).max(20).default(20),
    /** Port of the worker's /health and /metrics endpoints. */
    OPS_PORT: z.coerce.number().int().min(0).max(65535).default(9101),
    /** Users read per page while fanning out a digest. */
    FANOUT_PAGE_SIZE: z.coerce.number().int().min(1).max(10_000).default(500),
  })
  .superRefine(refineDedupEnv)
  .superRefine(forbidDevelopmentSecrets);

export type WorkerConfig = z.infer<typeof workerEnvSchema>;
