import { parseLinkQuery } from './link.codec';
import { SignedLinkFields, signatureMatches } from './link.signer';
import { checkTarget } from './target.policy';
import { parseTrackingOptions, ResolvedTrackingOptions, TrackingOptions } from './tracking.options';
import { mergeUtm } from './utm.merger';

/** Why a link was refused. */
export type InvalidLinkReason = 'unsigned' | 'malformed' | 'bad-signature' | 'off-site' | 'not-allowed';

/** A link whose signature verified and whose target is safe. */
export interface VerifiedLink extends SignedLinkFields {
  /** Normalised pathname of the target on the site. */
  pathname: string;
}

export type LinkVerification =
  | {
      ok: true;
      link: VerifiedLink;
      /** Absolute redirect URL: the site's origin, the target, and the merged utm_* parameters. */
      location: string;
    }
  | { ok: false; reason: InvalidLinkReason };

/**
 * Verifies tracking links made by {@link LinkBuilder} with any configured secret, then re-checks the target
 * (same origin, allowlist) whatever the signature says. Pure; usable without Nest.
 */
export class LinkVerifier {
  private readonly options: ResolvedTrackingOptions;

  constructor(options: TrackingOptions) {
    this.options = parseTrackingOptions(options);
  }

  /** Verifies a full link, or a request target such as `/daily/?/x/&c=…&s=…` (everything after the first "?"). */
  verify(url: string | URL): LinkVerification {
    const text = typeof url === 'string' ? url : url.href;
    const mark = text.indexOf('?');
    return mark < 0 ? { ok: false, reason: 'unsigned' } : this.verifyQuery(text.slice(mark + 1));
  }

  /** Verifies the raw query string of a link (leading "?" optional). */
  verifyQuery(rawQuery: string): LinkVerification {
    const parsed = parseLinkQuery(rawQuery);
    if (!parsed.ok) return parsed;
    if (!signatureMatches(this.options.secrets, parsed.fields, parsed.signature)) {
      return { ok: false, reason: 'bad-signature' };
    }
    const check = checkTarget(parsed.fields.target, this.options.baseUrl, this.options.pathAllowlist);
    if (!check.ok) return check;

    const { campaign, content, term } = parsed.fields;
    const utm = { ...this.options.defaultUtm, campaign };
    if (content !== undefined) utm.content = content;
    if (term !== undefined) utm.term = term;
    const location = mergeUtm(check.url, utm);
    return { ok: true, link: { ...parsed.fields, pathname: check.url.pathname }, location };
  }

  /** Where `redirect-root` sends invalid links: the site's root. */
  get rootUrl(): string {
    return `${this.options.baseUrl}/`;
  }

  get invalidLinkBehaviour(): ResolvedTrackingOptions['invalidLinkBehaviour'] {
    return this.options.invalidLinkBehaviour;
  }
}
