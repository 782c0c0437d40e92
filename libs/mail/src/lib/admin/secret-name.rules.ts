/** Which names (headers, fields, query parameters, `name=value` text) mark their value as a secret. */

/** A name segment (split on `-`, `_`, `.`, spaces and camelCase) that marks a secret. */
const SECRET_SEGMENT =
  /^(?:(?:api|access|secret|private|auth|refresh|id|client|session|csrf|xsrf|signing|master|encryption|app|bot|user|account|service|bearer|storage|shared|partner|webhook|oauth|security|personal)?(?:key|keys|token|tokens|secret|secrets)|pass|passwd|password|passwords|passphrase|pwd|pw|auth|authorization|authentication|credential|credentials|creds|cookie|cookies|session|sessions|sessionid|sessid|phpsessid|jsessionid|sid|signature|signatures|sig|private|jwt|otp|dsn|apikey|bearer|passkey|passkeys|pin|cvv|cvc|cvv2|salt|nonce|hmac)$/;
/** A segment before `key` that makes it an identifier, not a secret (`Idempotency-Key`, `primaryKey`). */
const PLAIN_KEY_QUALIFIER =
  /^(?:idempotency|cache|primary|foreign|partition|sort|routing|dedup|dedupe|lock|redis|object|message|ledger|public|row|map|unique|composite|group|index|hash|s3|bucket|translation|i18n|react|hot)$/;
/** A last segment that names data about a secret, not the secret (`tokenType`, `passwordLength`). */
const METADATA_SUFFIX =
  /^(?:count|counts|length|len|size|type|types|name|names|prefix|suffix|expires|expiry|expiration|exp|ttl|version|format|kind|limit|left|used|enabled|required|url|uri|endpoint|path|file|at|date|time|timeout|header|field|param|policy|algorithm|alg|scheme|mode|status|valid|invalid|error|errors|rotation|strength|rounds)$/;

const MAX_NAME_LENGTH = 256;

/** Lower-case segments of a name: `X-Goog-Api-Key`, `privateKey`, `client_secret`, `XCSRFToken`. */
export function nameSegments(name: string): string[] {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
    .replace(/([A-Z])(?=[A-Z][a-z])/g, '$1-')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter(Boolean);
}

/** Whether a name marks a secret by its segments (what `SecretRedactor.isSensitiveKey` adds to its exact keys). */
export function isSecretName(name: string): boolean {
  // No real name is this long: hide its value rather than spend time on an attacker's 16 KB name.
  if (name.length > MAX_NAME_LENGTH) return true;
  const segments = nameSegments(name);
  if (segments.length === 0 || METADATA_SUFFIX.test(segments[segments.length - 1])) return false;
  return segments.some((segment, index) => {
    if (!SECRET_SEGMENT.test(segment)) return false;
    return (
      !(segment === 'key' || segment === 'keys') ||
      index === 0 ||
      !PLAIN_KEY_QUALIFIER.test(segments[index - 1])
    );
  });
}
