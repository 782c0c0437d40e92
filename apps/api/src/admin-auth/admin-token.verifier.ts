import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/** The caller an admin request was authenticated as: a short, non-secret token fingerprint. */
export interface AdminActor {
  actor: string;
}

/** What a request presented: no token, a token that matches none, or the actor of a configured token. */
export type AdminIdentity = { kind: 'missing' } | { kind: 'invalid' } | { kind: 'admin'; actor: string };

const digest = (value: string) => createHash('sha256').update(value).digest();

/**
 * Checks the token of `Authorization: Bearer <token>` or `X-Api-Key: <token>` against the configured
 * ones. Compares SHA-256 digests with timingSafeEqual against every token, so neither a token's content
 * nor its length nor its position leaks through timing.
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
    const presented = presentedToken(headers);
    if (presented === undefined) return { kind: 'missing' };
    const candidate = digest(presented);
    let actor: string | undefined;
    for (const token of this.tokens) {
      if (timingSafeEqual(candidate, token.digest)) actor = token.actor;
    }
    return actor === undefined ? { kind: 'invalid' } : { kind: 'admin', actor };
  }
}

function presentedToken(headers: IncomingHttpHeaders): string | undefined {
  const authorization = headers.authorization;
  if (authorization?.toLowerCase().startsWith('bearer ')) return authorization.slice(7).trim();
  const apiKey = headers['x-api-key'];
  return typeof apiKey === 'string' && apiKey.length > 0 ? apiKey : undefined;
}
