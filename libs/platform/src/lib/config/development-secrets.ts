import type { z } from 'zod';

/**
 * Defaults that let `npm start` run without any secret set. Each is refused when NODE_ENV is
 * `production` (see {@link forbidDevelopmentSecrets}).
 */
export const DEVELOPMENT_SECRETS = {
  ADMIN_TOKENS: 'local-development-admin-token',
  TRACKING_SECRETS: 'local-development-tracking-secret-not-for-production',
} as const;

/** A zod `superRefine` for app schemas: production must not run on a development default. */
export function forbidDevelopmentSecrets(config: { NODE_ENV: string }, context: z.RefinementCtx): void {
  if (config.NODE_ENV !== 'production') return;
  for (const [key, development] of Object.entries(DEVELOPMENT_SECRETS)) {
    const value = (config as Record<string, unknown>)[key];
    const values = Array.isArray(value) ? value : [value];
    if (values.includes(development)) {
      context.addIssue({
        code: 'custom',
        path: [key],
        message: 'must be set to a secret of your own in production',
      });
    }
  }
}
