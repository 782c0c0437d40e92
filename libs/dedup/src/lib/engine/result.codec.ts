/** A result's JSON text is stored inside `{ "once:json": text }` when a store could not hold it as is. */
const RESULT_WRAPPER = 'once:json';
/** Results above this many UTF-8 bytes are not stored (the effect still completes). */
export const MAX_RESULT_BYTES = 256 * 1024;
/**
 * JSON.stringify writes NUL and unpaired surrogates as `\u0000` / `\udXXX` escapes, which Postgres
 * jsonb refuses (a refused completion would leave the claim open and the effect would run again).
 * A false positive (an escaped backslash before "u0000") only wraps a result that needed no wrapping.
 */
const JSONB_UNSAFE = /\\u(?:0000|d[89a-f][0-9a-f]{2})/i;

const isWrapper = (value: unknown): value is Record<typeof RESULT_WRAPPER, string> =>
  typeof value === 'object' &&
  value !== null &&
  !Array.isArray(value) &&
  typeof (value as Record<string, unknown>)[RESULT_WRAPPER] === 'string' &&
  Object.keys(value).length === 1;

/** The JSON text to store for `result`, or why it cannot be stored. */
export function encodeResult(result: unknown): { text: string } | { unstorable: string } {
  let text: string | undefined;
  try {
    text = JSON.stringify(result);
  } catch (error) {
    return { unstorable: `not JSON-serialisable (${(error as Error).name})` };
  }
  if (text === undefined) return { unstorable: 'not JSON-serialisable' };
  // Decided on the JSON text (a toJSON or an undefined field can make a wrapper-shaped text).
  if (JSONB_UNSAFE.test(text) || text.startsWith(`{"${RESULT_WRAPPER}"`))
    text = JSON.stringify({ [RESULT_WRAPPER]: text });
  if (Buffer.byteLength(text, 'utf8') > MAX_RESULT_BYTES) {
    return { unstorable: `larger than ${MAX_RESULT_BYTES} bytes` };
  }
  return { text };
}

/** The value of a stored result text (see {@link encodeResult}); `undefined` if none or unreadable. */
export function decodeResult(json: string | undefined): unknown {
  if (json === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(json);
    return isWrapper(value) ? JSON.parse(value[RESULT_WRAPPER]) : value;
  } catch {
    return undefined;
  }
}
