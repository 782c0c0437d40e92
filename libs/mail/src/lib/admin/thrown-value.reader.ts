/**
 * Defensive reads of a thrown value, which may be anything: a getter or Proxy trap that throws, a
 * non-string `message` or `name`, a revoked Proxy. Every read of a thrown value (fingerprint, mail
 * renderer, redactor) goes through these, so a hostile value can never make an alert vanish.
 */

/** The property, or undefined when reading it throws (getter, Proxy trap, revoked Proxy). */
export function readProperty(value: unknown, key: PropertyKey): unknown {
  if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return undefined;
  try {
    return (value as Record<PropertyKey, unknown>)[key];
  } catch {
    return undefined;
  }
}

/** `value instanceof Error`, false when the check throws (a Proxy's `getPrototypeOf` trap). */
export function isErrorValue(value: unknown): value is Error {
  try {
    return value instanceof Error;
  } catch {
    return false;
  }
}

/** `value instanceof AggregateError`, false when the check throws. */
export function isAggregateErrorValue(value: unknown): value is AggregateError {
  try {
    return value instanceof AggregateError;
  } catch {
    return false;
  }
}

/** JSON of a value, else its string form, else a placeholder naming its type; never throws. */
export function safeJson(value: unknown): string {
  try {
    // Whole: a cut here could halve a secret before the redactor sees it (callers redact, then cut).
    const json = JSON.stringify(value);
    if (json !== undefined) return json;
  } catch {
    // falls through to the string form
  }
  return safeString(value);
}

/** `String(value)`, or a placeholder naming its type when that throws. */
export function safeString(value: unknown): string {
  try {
    return String(value);
  } catch {
    return `[unprintable ${typeOfThrown(value)}]`;
  }
}

/** A string as is; a number, boolean, bigint or symbol in its string form; an object as JSON; undefined/null as undefined. */
export function textOf(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'object' || typeof value === 'function') return safeJson(value);
  return safeString(value);
}

/** What kind of value was thrown, for a mail that cannot show more: `TypeError`, `object`, `symbol`… */
export function typeOfThrown(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value !== 'object') return typeof value;
  const constructorName = readProperty(readProperty(value, 'constructor'), 'name');
  return typeof constructorName === 'string' && constructorName ? constructorName : 'object';
}

/** An error's name, message, stack, own enumerable properties, cause and (AggregateError) errors. */
export function errorFields(error: Error): Record<string, unknown> {
  const fields: Record<string, unknown> = {
    name: readProperty(error, 'name'),
    message: readProperty(error, 'message'),
    stack: readProperty(error, 'stack'),
  };
  Object.assign(fields, ownEntries(error));
  const cause = readProperty(error, 'cause');
  if (cause !== undefined) fields['cause'] = cause;
  if (isAggregateErrorValue(error)) fields['errors'] = readProperty(error, 'errors');
  return fields;
}

/** Own enumerable properties; a throwing getter reads as `[unreadable]`, keys that cannot be listed as one `…` entry. */
export function ownEntries(value: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  let keys: string[];
  try {
    keys = Object.keys(value);
  } catch {
    return { '…': '[unreadable]' };
  }
  for (const key of keys) {
    try {
      out[key] = (value as Record<string, unknown>)[key];
    } catch {
      out[key] = '[unreadable]';
    }
  }
  return out;
}
