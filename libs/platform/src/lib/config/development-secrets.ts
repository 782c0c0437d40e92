import type { z } from 'zod';

/**
 * Defaults that let `npm start` run without any secret set. Each is refused when NODE_ENV is
 * `production`, which is also what an unset NODE_ENV means (see {@link forbidDevelopmentSecrets}).
 */
export const DEVELOPMENT_SECRETS = {
  ADMIN_TOKENS: 'local-development-admin-token',
  TRACKING_SECRETS: 'local-development-tracking-secret-not-for-production',
} as const;

/**
 * A zod `superRefine` for app schemas: production must not run on a development default secret,
 * with dedup switched off, or with pretty logs (pino-pretty is a dev dependency, absent from images).
 */
export function forbidDevelopmentSecrets(config: { NODE_ENV: string }, context: z.RefinementCtx): void {
  if (config.NODE_ENV !== 'production') return;
  const values = config as Record<string, unknown>;
  for (const [key, development] of Object.entries(DEVELOPMENT_SECRETS)) {
    const value = values[key];
    const list = Array.isArray(value) ? value : [value];
    if (list.includes(development)) {
      context.addIssue({
        code: 'custom',
        path: [key],
        message: 'must be set to a secret of your own in production (NODE_ENV unset means production)',
      });
    }
  }
  if (values['DEDUP_ENABLED'] === false) {
    context.addIssue({
      code: 'custom',
      path: ['DEDUP_ENABLED'],
      message: 'must not be false in production: it turns exactly-once handling off',
    });
  }
  if (values['LOG_PRETTY'] === true) {
    context.addIssue({
      code: 'custom',
      path: ['LOG_PRETTY'],
      message: 'is for development only (pino-pretty is not installed in production images)',
    });
  }
}
