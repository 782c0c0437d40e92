import { createHmac, timingSafeEqual } from 'node:crypto';

/** Everything a link's signature binds. */
export interface SignedLinkFields {
  /** Root-relative target, decoded, exactly as given to the builder. */
  target: string;
  campaign: string;
  recipientId?: string;
  content?: string;
  term?: string;
  messageKey?: string;
}

/** Bytes of HMAC-SHA256 kept in a link (128 bits, 22 base64url characters). */
export const SIGNATURE_BYTES = 16;
const SIGNATURE_PATTERN = /^[A-Za-z0-9_-]{22}$/;

// A JSON array is an unambiguous encoding: no field can spill into the next, and an absent field (null)
// differs from an empty one. The version tag keeps these MACs from being valid for any other purpose.
function canonical(fields: SignedLinkFields): string {
  return JSON.stringify([
    'once-link-v1',
    fields.target,
    fields.campaign,
    fields.recipientId ?? null,
    fields.content ?? null,
    fields.term ?? null,
    fields.messageKey ?? null,
  ]);
}

/** The signature parameter of a link: truncated HMAC-SHA256, base64url. */
export function signLink(secret: string, fields: SignedLinkFields): string {
  return createHmac('sha256', secret)
    .update(canonical(fields))
    .digest()
    .subarray(0, SIGNATURE_BYTES)
    .toString('base64url');
}

/**
 * True when `signature` is the signature of `fields` under any of `secrets`. Compares with
 * `crypto.timingSafeEqual` and checks every secret, so timing tells neither how much matched nor which secret.
 */
export function signatureMatches(
  secrets: readonly string[],
  fields: SignedLinkFields,
  signature: string,
): boolean {
  if (!SIGNATURE_PATTERN.test(signature)) return false;
  const given = Buffer.from(signature, 'ascii');
  let matched = false;
  for (const secret of secrets) {
    const expected = Buffer.from(signLink(secret, fields), 'ascii');
    matched = timingSafeEqual(expected, given) || matched;
  }
  return matched;
}
