import { isIP } from 'node:net';
import { z } from 'zod';
import {
  awsEnvSchema,
  baseEnvSchema,
  databaseEnvSchema,
  dedupEnvSchema,
  refineDedupEnv,
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

const NAMED_PROXIES = ['loopback', 'linklocal', 'uniquelocal'];

function isProxyAddress(entry: string): boolean {
  if (NAMED_PROXIES.includes(entry)) return true;
  const [address, bits, extra] = entry.split('/');
  const version = isIP(address);
  if (version === 0 || extra !== undefined) return false;
  if (bits === undefined) return true;
  return /^\d{1,3}$/.test(bits) && Number(bits) <= (version === 4 ? 32 : 128);
}

/**
 * Express' `trust proxy` from TRUST_PROXY: a hop count, or a comma-separated list of proxy
 * addresses, CIDR ranges and `loopback`/`linklocal`/`uniquelocal`; `false` or `0` (the default)
 * trusts nothing, and X-Forwarded-For is ignored. Behind an ALB: `1`. CloudFront → ALB: `2`, with the
 * ALB reachable only from CloudFront (else a client skipping CloudFront picks its IP). `true` is
 * refused: it would let any client choose its IP through X-Forwarded-For.
 */
export const trustProxySchema = z
  .string()
  .default('false')
  .transform((value, context): false | number | string[] => {
    const trimmed = value.trim().toLowerCase();
    if (trimmed === 'false' || trimmed === '0') return false;
    if (/^\d+$/.test(trimmed)) return Number(trimmed);
    if (trimmed === 'true') {
      context.addIssue({
        code: 'custom',
        message:
          "'true' trusts every X-Forwarded-For entry, so any client could pick its IP: give the hop count (1 behind an ALB) or the proxies' addresses",
      });
      return z.NEVER;
    }
    const entries = value.split(',').map((entry) => entry.trim());
    const bad = entries.filter((entry) => !isProxyAddress(entry));
    if (bad.length > 0) {
      context.addIssue({
        code: 'custom',
        message: `${bad.map((entry) => JSON.stringify(entry)).join(', ')}: expected a hop count, IP addresses, CIDR ranges or ${NAMED_PROXIES.join('/')}`,
      });
      return z.NEVER;
    }
    return entries;
  });

/** The admin routes' limits; the guards parse them again so a partial config (tests) gets the defaults. */
export const adminLimitsEnvSchema = z.object({
  /** Authenticated admin requests per token per minute, counted in Redis across api replicas. */
  ADMIN_RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(1).default(120),
  /** Requests with a missing or wrong admin token per client IP per minute; more answer 429. */
  ADMIN_AUTH_FAILURES_PER_MINUTE: z.coerce.number().int().min(1).default(30),
});

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
  .extend(adminLimitsEnvSchema.shape)
  .extend({
    PORT: z.coerce.number().int().min(0).max(65535).default(3000),
    /** Comma-separated bearer tokens / API keys for the admin routes (several, to rotate without downtime). */
    ADMIN_TOKENS: z.string().default(DEVELOPMENT_SECRETS.ADMIN_TOKENS).pipe(tokenList),
    /** Which proxies in front of the api may set X-Forwarded-For (see {@link trustProxySchema}). */
    TRUST_PROXY: trustProxySchema,
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
  .superRefine(refineDedupEnv)
  .superRefine(forbidDevelopmentSecrets);

export type ApiConfig = z.infer<typeof apiEnvSchema>;
