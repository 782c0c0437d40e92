import type { FieldProblem } from './validation-failed.exception';

/** Where a value came from: URL text (path and query) may hold no control character at all. */
export type InputPart = 'url' | 'body';

/** Deeper JSON than any route takes; walking it further would only cost time. */
export const MAX_BODY_DEPTH = 16;
/** Problems reported per request: enough to fix a request, bounded for a hostile one. */
const MAX_PROBLEMS = 20;
/** Keys that mean something to JavaScript objects rather than to any route. */
const RESERVED_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

// eslint-disable-next-line no-control-regex -- exactly what URL text must not hold
const URL_FORBIDDEN = /[\u0000-\u001f\u007f]|\p{Cs}/u;
// eslint-disable-next-line no-control-regex -- body text may hold tab, LF and CR
const BODY_FORBIDDEN = /[\u0000-\u0008\u000b\u000c\u000e-\u001f]|\p{Cs}/u;

const hex = (code: number) => `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;

/**
 * What is wrong with one string of input, or `undefined`: NUL (Postgres refuses it in text),
 * other control characters (none in URL text; tab, LF and CR allowed in JSON bodies) and lone
 * surrogates (ill-formed UTF-16: no UTF-8 store can hold them as sent).
 */
export function textProblem(text: string, part: InputPart): string | undefined {
  const match = (part === 'url' ? URL_FORBIDDEN : BODY_FORBIDDEN).exec(text);
  if (!match) return undefined;
  const code = match[0].charCodeAt(0);
  if (code >= 0xd800 && code <= 0xdfff)
    return `contains a lone surrogate ${hex(code)} at index ${match.index}`;
  return `contains ${code === 0 ? 'NUL (U+0000)' : `control character ${hex(code)}`} at index ${match.index}`;
}

/**
 * Every problem of a parsed input value (a path param, the query object, a JSON body): its
 * strings and keys by {@link textProblem}, keys JavaScript gives a meaning to (`__proto__`…),
 * and nesting deeper than {@link MAX_BODY_DEPTH}. Fields are dotted paths from `field`.
 */
export function inputProblems(value: unknown, field: string, part: InputPart): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const pending: Array<{ value: unknown; field: string; depth: number }> = [{ value, field, depth: 0 }];
  while (pending.length > 0 && problems.length < MAX_PROBLEMS) {
    const next = pending.pop();
    if (next === undefined) break;
    if (typeof next.value === 'string') {
      const problem = textProblem(next.value, part);
      if (problem) problems.push({ field: next.field, message: problem });
      continue;
    }
    if (next.value === null || typeof next.value !== 'object') continue;
    if (next.depth >= MAX_BODY_DEPTH) {
      problems.push({ field: next.field, message: `is nested deeper than ${MAX_BODY_DEPTH} levels` });
      continue;
    }
    for (const [key, child] of Object.entries(next.value)) {
      const childField = next.field ? `${next.field}.${key}` : key;
      const keyProblem = RESERVED_KEYS.has(key) ? 'is a reserved name' : textProblem(key, part);
      if (keyProblem) problems.push({ field: childField, message: `the name ${keyProblem}` });
      else pending.push({ value: child, field: childField, depth: next.depth + 1 });
    }
  }
  return problems.slice(0, MAX_PROBLEMS);
}

/**
 * Problems of a raw query string (`a=1&b=%ZZ`) that its parser hides: a name or value that is not
 * valid percent-encoded UTF-8 is decoded to U+FFFD or left as it was, so it is refused here.
 */
export function rawQueryProblems(rawQuery: string): FieldProblem[] {
  const problems: FieldProblem[] = [];
  for (const piece of rawQuery.split('&')) {
    if (problems.length >= MAX_PROBLEMS) break;
    if (piece === '') continue;
    const equals = piece.indexOf('=');
    const rawName = equals < 0 ? piece : piece.slice(0, equals);
    const name = decodeOrUndefined(rawName);
    if (name === undefined) {
      problems.push({ field: '(query)', message: 'a parameter name is not valid percent-encoded UTF-8' });
      continue;
    }
    if (equals >= 0 && decodeOrUndefined(piece.slice(equals + 1)) === undefined)
      problems.push({ field: name, message: 'is not valid percent-encoded UTF-8' });
  }
  return problems;
}

function decodeOrUndefined(text: string): string | undefined {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
}
