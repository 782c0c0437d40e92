import { createHash } from 'node:crypto';

/** Error name and message of anything thrown. */
export function describeThrown(error: unknown): { name: string; message: string; stack?: string } {
  if (error instanceof Error)
    return { name: error.name || 'Error', message: error.message, stack: error.stack };
  if (typeof error === 'object' && error !== null) {
    const shape = error as { name?: unknown; message?: unknown; stack?: unknown };
    return {
      name: typeof shape.name === 'string' ? shape.name : 'NonError',
      message: typeof shape.message === 'string' ? shape.message : safeJson(error),
      stack: typeof shape.stack === 'string' ? shape.stack : undefined,
    };
  }
  return { name: 'NonError', message: String(error) };
}

function safeJson(value: unknown): string {
  try {
    // Whole: a cut here could halve a secret before the redactor sees it (callers redact, then cut).
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** The message with volatile parts (ids, numbers, quoted values) replaced, so one bug maps to one fingerprint. */
export function normalizeErrorMessage(message: string): string {
  return message
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, '<uuid>')
    .replace(/\b[0-9a-f]{12,}\b/gi, '<hex>')
    .replace(/"[^"]*"|'[^']*'/g, '<str>')
    .replace(/\d+/g, '<n>')
    .slice(0, 300);
}

/**
 * A short, stable id for "the same error": its name, normalized message, top three in-app stack
 * frames (no node_modules or Node internals, which vary with how the call was scheduled; no
 * columns) and where it happened (`scope`, e.g. `http GET /users/:id` or `worker send-email`).
 */
export function errorFingerprint(error: unknown, scope: string): string {
  const { name, message, stack } = describeThrown(error);
  const frames = (stack ?? '')
    .split('\n')
    .map((line) => line.trim())
    .filter(
      (line) =>
        line.startsWith('at ') && !/node_modules|\(node:|\(<anonymous>\)|^at (async )?Promise\./.test(line),
    )
    .slice(0, 3)
    .map((line) => line.replace(/:\d+\)?$/, ''));
  return createHash('sha256')
    .update([scope, name, normalizeErrorMessage(message), ...frames].join('\n'))
    .digest('hex')
    .slice(0, 16);
}
