import { createHash } from 'node:crypto';
import { isErrorValue, readProperty, safeJson, textOf } from './thrown-value.reader';

/** Error name, message and stack of anything thrown; never throws, always strings. */
export function describeThrown(error: unknown): { name: string; message: string; stack?: string } {
  if (typeof error === 'object' && error !== null) {
    const isError = isErrorValue(error);
    const name = readProperty(error, 'name');
    const message = readProperty(error, 'message');
    const stack = readProperty(error, 'stack');
    return {
      name: typeof name === 'string' && name ? name : isError ? 'Error' : 'NonError',
      message: isError ? (textOf(message) ?? '') : typeof message === 'string' ? message : safeJson(error),
      stack: typeof stack === 'string' ? stack : undefined,
    };
  }
  return { name: 'NonError', message: textOf(error) ?? String(error) };
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
