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
  try {
    return decodeURIComponent(value.replace(/\+/g, ' '));
  } catch {
    return value;
  }
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

/** `name=` at the start of a part or after `;`/`?` inside it (the name holds none of `;?=`). */
const ASSIGNMENT = /(?:^|[;?])([^;?=]*)=/g;

/**
 * One `&`-separated part, hidden from the first secret-named assignment to its end: the part's own
 * value, or a `;token=…` / `?s=…` hidden inside another parameter's value.
 */
function redactPart(part: string): string {
  for (const match of part.matchAll(ASSIGNMENT)) {
    if (isSecretLogName(match[1])) return `${part.slice(0, match.index + match[0].length)}${LOG_REDACTED}`;
  }
  return part;
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
