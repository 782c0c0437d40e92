import type { TrackingOptions } from '@once/tracking';
import { z } from 'zod';
import { urlVariable } from './config.schemas';
import { DEVELOPMENT_SECRETS } from './development-secrets';

const list = z.string().transform((value) =>
  value
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean),
);

/** Click-tracking links: the api verifies them, the worker builds them, so both read the same variables. */
export const trackingEnvSchema = z.object({
  /** The site's origin, e.g. https://difio.example: links point at it and redirects never leave it. */
  TRACKING_BASE_URL: urlVariable(['http:', 'https:'], { originOnly: true }).default('http://127.0.0.1:3000'),
  /** Comma-separated HMAC secrets (>= 32 characters each), current first, then previous ones still accepted. */
  TRACKING_SECRETS: z
    .string()
    .default(DEVELOPMENT_SECRETS.TRACKING_SECRETS)
    .pipe(list)
    .pipe(z.array(z.string().min(32, 'each secret needs at least 32 characters')).min(1)),
  /** Comma-separated path prefixes targets must start with (e.g. /updates/,/projects/); unset allows the whole site. */
  TRACKING_PATH_ALLOWLIST: list.optional(),
  TRACKING_INVALID_LINK: z.enum(['error-page', 'redirect-root']).default('error-page'),
  TRACKING_UTM_SOURCE: z.string().min(1).default('email'),
  TRACKING_UTM_MEDIUM: z.string().min(1).default('email'),
  TRACKING_CLICK_FLUSH_MS: z.coerce.number().int().min(10).max(60_000).default(100),
  TRACKING_CLICK_BATCH_SIZE: z.coerce.number().int().min(1).max(5000).default(200),
  /** Refused links: one is logged in full per interval, the rest of the interval in one summary line. */
  TRACKING_REFUSED_LOG_INTERVAL_MS: z.coerce.number().int().min(100).max(3_600_000).default(10_000),
});
export type TrackingEnv = z.infer<typeof trackingEnvSchema>;

/** Maps the validated environment to `TrackingModule.forRoot` options. */
export function trackingOptionsFromEnv(env: TrackingEnv): TrackingOptions {
  return {
    baseUrl: env.TRACKING_BASE_URL,
    secrets: env.TRACKING_SECRETS,
    pathAllowlist: env.TRACKING_PATH_ALLOWLIST?.length ? env.TRACKING_PATH_ALLOWLIST : undefined,
    invalidLinkBehaviour: env.TRACKING_INVALID_LINK,
    defaultUtm: { source: env.TRACKING_UTM_SOURCE, medium: env.TRACKING_UTM_MEDIUM },
    clickRecorder: { flushIntervalMs: env.TRACKING_CLICK_FLUSH_MS, batchSize: env.TRACKING_CLICK_BATCH_SIZE },
    refusedLinks: { logIntervalMs: env.TRACKING_REFUSED_LOG_INTERVAL_MS },
  };
}
