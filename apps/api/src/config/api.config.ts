import { z } from 'zod';
import {
  awsEnvSchema,
  baseEnvSchema,
  databaseEnvSchema,
  dedupEnvSchema,
  DEVELOPMENT_SECRETS,
  forbidDevelopmentSecrets,
  mailEnvSchema,
  queuesEnvSchema,
  redisEnvSchema,
  schedulesEnvSchema,
  trackingEnvSchema,
} from '@once/platform';

const tokenList = z
  .string()
  .transform((value) =>
    value
      .split(',')
      .map((token) => token.trim())
      .filter(Boolean),
  )
  .pipe(
    z.array(z.string().min(16, 'each token needs 16 characters or more')).min(1, 'needs at least one token'),
  );

export const apiEnvSchema = baseEnvSchema
  .extend(databaseEnvSchema.shape)
  .extend(redisEnvSchema.shape)
  .extend(awsEnvSchema.shape)
  .extend(queuesEnvSchema.shape)
  .extend(trackingEnvSchema.shape)
  .extend(mailEnvSchema.shape)
  .extend(dedupEnvSchema.shape)
  // The jobs' schedules, to check that a manual trigger names a scheduled slot.
  .extend(schedulesEnvSchema.shape)
  .extend({
    PORT: z.coerce.number().int().min(0).max(65535).default(3000),
    /** Comma-separated bearer tokens / API keys for the admin routes (several, to rotate without downtime). */
    ADMIN_TOKENS: z.string().default(DEVELOPMENT_SECRETS.ADMIN_TOKENS).pipe(tokenList),
    /** Admin requests per client IP per minute, counted in Redis across api replicas. */
    ADMIN_RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(1).default(120),
    /** SNS topics allowed to post SES bounce/complaint/delivery notifications to /webhooks/ses. */
    SES_SNS_TOPIC_ARNS: z
      .string()
      .default('')
      .transform((value) =>
        value
          .split(',')
          .map((arn) => arn.trim())
          .filter(Boolean),
      )
      .pipe(
        z.array(z.string().regex(/^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[\w-]+$/, 'must be SNS topic ARNs')),
      ),
  })
  .superRefine(forbidDevelopmentSecrets);

export type ApiConfig = z.infer<typeof apiEnvSchema>;
