import { SecretRedactor } from '@once/mail';

/** What replaces a hidden value in a log line. */
export const LOG_REDACTED = '[redacted]';

/**
 * Names hidden in logs, matched on the lower-cased name, on top of what the admin-mail redactor
 * hides: anything like a token, key, secret, password, auth value, session, signature or
 * credential, OAuth codes, the tracking link's signature `s` and recipient `r`, e-mail addresses.
 */
const LOG_SECRET_NAMES: readonly RegExp[] = [
  /token|secret|passw(or)?d|passphrase|credential|session|cookie|signature|auth|key/,
  /^(s|r|sig|pwd|code|otp|recipient)$/,
  /sig$/,
  /e-?mail/,
];

const mailRedactor = new SecretRedactor();

function safeDecode(value: string): string {
  let text = value;
  for (let round = 0; round < 2; round++) {
    try {
      text = decodeURIComponent(text.replace(/\+/g, ' '));
    } catch {
      return text;
    }
  }
  return text;
}

/**
 * Whether a query parameter or header of this name has its value hidden in logs. Names are compared
 * decoded, case-insensitively, trimmed and without a `[…]` suffix (`Token[]`, `%74oken` and ` s` count).
 */
export function isSecretLogName(name: string): boolean {
  const decoded = safeDecode(name).trim();
  const base = decoded.replace(/\[.*$/s, '').trim();
  return [decoded, base].some(
    (candidate) =>
      candidate.length > 0 &&
      (LOG_SECRET_NAMES.some((pattern) => pattern.test(candidate.toLowerCase())) ||
        mailRedactor.isSensitiveKey(candidate)),
  );
}

/** `?`, `;`, `#` or `&` (also percent-encoded once or twice: `%3F`, `%253F`…) before a nested `name=`. */
const SEPARATOR = String.raw`[;?#&]|%(?:25)?(?:3[fFbB]|23|26)`;
/** `=` (also `%3D`, `%253D`). */
const EQUALS = String.raw`=|%(?:25)?3[dD]`;
/**
 * `name=` at the start of a part or after a separator inside it, raw or percent-encoded: a nested
 * URL in a value (`next=https%3A%2F%2Fx%2F%3Ftoken%3D…`, a tracking target `/reset%3Ftoken%3D…`).
 */
const ASSIGNMENT = new RegExp(
  String.raw`(?:^|${SEPARATOR})((?:(?!${SEPARATOR}|${EQUALS})[^=])*)(?:${EQUALS})`,
  'g',
);
/** Longest decoded value scanned for secret-shaped text; a longer value is hidden whole. */
export const MAX_SCANNED_LOG_VALUE = 4_096;

/** Each run of valid `%XX` escapes decoded (`+` as a space); malformed escapes stay as they are. */
function lenientDecode(value: string): string {
  return value.replace(/\+/g, ' ').replace(/(?:%[0-9a-fA-F]{2})+/g, (run) => {
    try {
      return decodeURIComponent(run);
    } catch {
      return run;
    }
  });
}

/** Whether a value, as sent or decoded once or twice, holds secret-shaped text (auth scheme, URL credentials, token formats…). */
function hasSecretShape(value: string): boolean {
  let text = value;
  for (let round = 0; round < 3; round++) {
    if (text.length > MAX_SCANNED_LOG_VALUE) return true;
    if (mailRedactor.redactString(text, Infinity) !== text) return true;
    const decoded = lenientDecode(text);
    if (decoded === text) return false;
    text = decoded;
  }
  return false;
}

/**
 * One `&`-separated part, hidden from the first secret-named assignment to its end: the part's own
 * value, or a `;token=…` / `?s=…` / `%3Ftoken%3D…` hidden inside another parameter's value. A value
 * whose text looks like a secret (`Bearer …`, `postgres://u:pw@h`, also encoded) is hidden whole.
 */
function redactPart(part: string): string {
  for (const match of part.matchAll(ASSIGNMENT)) {
    if (isSecretLogName(match[1])) return `${part.slice(0, match.index + match[0].length)}${LOG_REDACTED}`;
  }
  const equals = part.indexOf('=');
  const value = part.slice(equals + 1);
  if (value === LOG_REDACTED || !hasSecretShape(value)) return part;
  return `${part.slice(0, equals + 1)}${LOG_REDACTED}`;
}

/** A query string (no leading `?`) with the values of secret-named parameters hidden. */
export function redactQuery(query: string): string {
  return query.split('&').map(redactPart).join('&');
}

/**
 * A URL or request target (`/daily/?…&s=…&r=…`, `https://host/p?token=…#access_token=…`) as it may
 * be logged: the values of secret-named query and fragment parameters are replaced by
 * {@link LOG_REDACTED}; the path and every other parameter stay as they were.
 */
export function redactUrl(url: string): string {
  const question = url.indexOf('?');
  const hash = url.indexOf('#');
  if (question < 0 && hash < 0) return url;
  if (question < 0 || (hash >= 0 && hash < question)) {
    return `${url.slice(0, hash + 1)}${redactQuery(url.slice(hash + 1))}`;
  }
  if (hash < 0) return `${url.slice(0, question + 1)}${redactQuery(url.slice(question + 1))}`;
  return `${url.slice(0, question + 1)}${redactQuery(url.slice(question + 1, hash))}#${redactQuery(url.slice(hash + 1))}`;
}
