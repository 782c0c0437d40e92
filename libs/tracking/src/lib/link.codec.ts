import { SignedLinkFields } from './link.signer';
import { MAX_PARAM_LENGTH } from './tracking.options';

/** Query parameter names of a tracking link, after the target segment. */
export const LINK_PARAMS = {
  campaign: 'c',
  content: 'ct',
  term: 't',
  recipientId: 'r',
  messageKey: 'm',
  signature: 's',
} as const;

type OptionalField = 'content' | 'term' | 'recipientId' | 'messageKey';
const OPTIONAL_FIELDS: readonly OptionalField[] = ['content', 'term', 'recipientId', 'messageKey'];

// Kept literal in the target segment: unreserved characters and the sub-delimiters that mean nothing to a
// query string and that WHATWG URL parsing leaves alone, so `new URL(link).href === link`. Everything else
// ("%", "&", "=", "+", "?", "#", "'", space, non-ASCII…) is percent-encoded.
const LITERAL = /^[A-Za-z0-9\-._~/:@!$()*,;]$/;

/** Percent-encodes a target for the first query segment; readable paths come out unchanged. */
export function encodeTarget(target: string): string {
  let out = '';
  for (const char of target) {
    out += LITERAL.test(char) ? char : encodeURIComponent(char).replace(/'/g, '%27');
  }
  return out;
}

/** True for a campaign/content/term/recipient/message value a link may carry. */
export function isValidParamValue(value: string): boolean {
  return value.length > 0 && value.length <= MAX_PARAM_LENGTH && !/\p{C}/u.test(value);
}

/** `<encoded target>&c=…[&ct=…][&t=…][&r=…][&m=…]&s=…` (no leading "?"). */
export function formatLinkQuery(fields: SignedLinkFields, signature: string): string {
  const params = new URLSearchParams();
  params.append(LINK_PARAMS.campaign, fields.campaign);
  for (const field of OPTIONAL_FIELDS) {
    const value = fields[field];
    if (value !== undefined) params.append(LINK_PARAMS[field], value);
  }
  params.append(LINK_PARAMS.signature, signature);
  return `${encodeTarget(fields.target)}&${params}`;
}

export type ParsedLinkQuery =
  { ok: true; fields: SignedLinkFields; signature: string } | { ok: false; reason: 'malformed' | 'unsigned' };

/**
 * Splits a raw query (with or without the leading "?", fragment ignored) into the decoded target and the
 * link parameters. Duplicated link parameters are malformed; unknown parameters are ignored (they are not
 * signed and never reach the redirect).
 */
export function parseLinkQuery(rawQuery: string): ParsedLinkQuery {
  let raw = rawQuery.startsWith('?') ? rawQuery.slice(1) : rawQuery;
  const hash = raw.indexOf('#');
  if (hash >= 0) raw = raw.slice(0, hash);
  const amp = raw.indexOf('&');
  const encodedTarget = amp < 0 ? raw : raw.slice(0, amp);
  const params = new URLSearchParams(amp < 0 ? '' : raw.slice(amp + 1));

  let target: string;
  try {
    target = decodeURIComponent(encodedTarget);
  } catch {
    return { ok: false, reason: 'malformed' };
  }

  const single = (name: string): string | undefined | null => {
    const values = params.getAll(name);
    if (values.length > 1) return null;
    return values[0];
  };
  const signature = single(LINK_PARAMS.signature);
  if (signature === null) return { ok: false, reason: 'malformed' };
  if (signature === undefined || signature === '') return { ok: false, reason: 'unsigned' };

  const campaign = single(LINK_PARAMS.campaign);
  if (campaign === null || campaign === undefined || !isValidParamValue(campaign)) {
    return { ok: false, reason: 'malformed' };
  }
  const fields: SignedLinkFields = { target, campaign };
  for (const field of OPTIONAL_FIELDS) {
    const value = single(LINK_PARAMS[field]);
    if (value === null || (value !== undefined && !isValidParamValue(value)))
      return { ok: false, reason: 'malformed' };
    if (value !== undefined) fields[field] = value;
  }
  return { ok: true, fields, signature };
}
