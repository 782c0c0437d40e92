import { formatLinkQuery, isValidParamValue } from './link.codec';
import { signLink, SignedLinkFields } from './link.signer';
import { checkTarget, TargetRejection } from './target.policy';
import { parseTrackingOptions, ResolvedTrackingOptions, TrackingOptions } from './tracking.options';

/** What a link says besides its target. Every field given is covered by the signature. */
export interface LinkParams {
  /** utm_campaign of the redirect, e.g. "Daily_Notification". */
  campaign: string;
  /** utm_content of the redirect. */
  content?: string;
  /** utm_term of the redirect. */
  term?: string;
  /** Who the email went to; recorded with the click. */
  recipientId?: string | number;
  /** Which message the link was in (e.g. the send's idempotency key); recorded with the click. */
  messageKey?: string;
}

/** Thrown by {@link LinkBuilder.build} for a target or parameter the redirect would refuse. */
export class TrackingLinkError extends Error {
  constructor(
    readonly reason: TargetRejection | 'invalid-param',
    detail: string,
  ) {
    super(`Cannot build tracking link: ${detail}`);
    this.name = 'TrackingLinkError';
  }
}

/**
 * Builds signed tracking links: `<baseUrl><trackingPath>?<target>&c=<campaign>[&ct=][&t=][&r=][&m=]&s=<sig>`,
 * signed with the current (first) secret. Pure; usable without Nest.
 */
export class LinkBuilder {
  private readonly options: ResolvedTrackingOptions;

  constructor(options: TrackingOptions) {
    this.options = parseTrackingOptions(options);
  }

  /**
   * Returns the tracking link for a root-relative `path` on the site (it may carry its own query and
   * fragment). Throws {@link TrackingLinkError} when the redirect would refuse the target.
   */
  build(path: string, params: LinkParams): string {
    const check = checkTarget(path, this.options.baseUrl, this.options.pathAllowlist);
    if (!check.ok) throw new TrackingLinkError(check.reason, `target refused (${check.reason})`);

    const fields: SignedLinkFields = { target: path, campaign: params.campaign };
    const optional = {
      content: params.content,
      term: params.term,
      recipientId: params.recipientId === undefined ? undefined : String(params.recipientId),
      messageKey: params.messageKey,
    };
    if (!isValidParamValue(fields.campaign)) throw new TrackingLinkError('invalid-param', 'invalid campaign');
    for (const [name, value] of Object.entries(optional) as [keyof typeof optional, string | undefined][]) {
      if (value === undefined) continue;
      if (!isValidParamValue(value)) throw new TrackingLinkError('invalid-param', `invalid ${name}`);
      fields[name] = value;
    }

    const signature = signLink(this.options.secrets[0], fields);
    return `${this.options.baseUrl}${this.options.trackingPath}?${formatLinkQuery(fields, signature)}`;
  }
}
