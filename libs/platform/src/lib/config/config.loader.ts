import { z } from 'zod';

/** Thrown at boot when the environment does not satisfy an app's schema; the message names every bad variable. */
export class ConfigValidationError extends Error {
  constructor(
    readonly app: string,
    readonly issues: readonly string[],
  ) {
    super(`Invalid configuration for ${app}:\n${issues.map((issue) => `  - ${issue}`).join('\n')}`);
    this.name = 'ConfigValidationError';
  }
}

/**
 * Validates an environment (by default `process.env`) against a zod schema once, at boot.
 * Unknown variables are ignored; empty strings count as unset so `FOO=` falls back to the default.
 */
export function loadConfig<S extends z.ZodType>(
  app: string,
  schema: S,
  env: Record<string, string | undefined> = process.env,
): z.infer<S> {
  const cleaned = Object.fromEntries(
    Object.entries(env).filter(([, value]) => value !== undefined && value !== ''),
  );
  const result = schema.safeParse(cleaned);
  if (!result.success) {
    throw new ConfigValidationError(
      app,
      result.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`),
    );
  }
  return result.data;
}
