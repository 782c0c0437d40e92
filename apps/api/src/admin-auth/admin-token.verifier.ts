import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/** The caller an admin request was authenticated as: a short, non-secret token fingerprint. */
export interface AdminActor {
  actor: string;
}

/** What a request presented: no token, a token that matches none, or the actor of a configured token. */
export type AdminIdentity = { kind: 'missing' } | { kind: 'invalid' } | { kind: 'admin'; actor: string };

const digest = (value: string) => createHash('sha256').update(value).digest();

/** `Authorization: Bearer <token>`: the scheme in any case, then any spaces or tabs (RFC 7235). */
const BEARER = /^bearer[ \t]+(\S+)[ \t]*$/i;

/**
 * Checks the tokens of `Authorization: Bearer <token>` and `X-Api-Key: <token>` against the configured
 * ones: a request is admitted if any token it presents is valid, and invalid only if it presents some
 * and none is. Compares SHA-256 digests with timingSafeEqual, every presented token against every
 * configured one, so neither a token's content nor its length nor its position leaks through timing.
 */
export class AdminTokenVerifier {
  private readonly tokens: Array<{ digest: Buffer; actor: string }>;

  constructor(tokens: readonly string[]) {
    this.tokens = tokens.map((token) => ({
      digest: digest(token),
      actor: `token:${digest(token).toString('hex').slice(0, 8)}`,
    }));
  }

  identify(headers: IncomingHttpHeaders): AdminIdentity {
    const presented = presentedTokens(headers);
    if (presented.length === 0) return { kind: 'missing' };
    let actor: string | undefined;
    for (const candidate of presented.map(digest)) {
      for (const token of this.tokens) {
        if (timingSafeEqual(candidate, token.digest)) actor ??= token.actor;
      }
    }
    return actor === undefined ? { kind: 'invalid' } : { kind: 'admin', actor };
  }
}

/** The bearer token first, then the API key; a header without a token presents none. */
function presentedTokens(headers: IncomingHttpHeaders): string[] {
  const presented: string[] = [];
  const bearer = headers.authorization === undefined ? undefined : BEARER.exec(headers.authorization)?.[1];
  if (bearer !== undefined) presented.push(bearer);
  const apiKey = headers['x-api-key'];
  if (typeof apiKey === 'string' && apiKey.length > 0) presented.push(apiKey);
  return presented;
}
