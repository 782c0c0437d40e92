import { Controller, Get, Inject, Optional, Req, Res } from '@nestjs/common';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { METRICS_REGISTRY, redactUrl } from '@once/platform';
import {
  ClickRecorder,
  classifyVisit,
  INVALID_LINK_PAGE_HEADERS,
  InvalidLinkReason,
  LinkVerifier,
  RefusedLinkLog,
  renderInvalidLinkPage,
} from '@once/tracking';
import { Counter, type Registry } from 'prom-client';
import { RawInput } from '../common/raw-input.decorator';

/** Express sets `originalUrl`: the request target before any router rewrote `url`. */
type RedirectRequest = IncomingMessage & { originalUrl?: string; id?: unknown; log?: unknown };

/** Sent with every answer of the redirect endpoint. */
const REDIRECT_HEADERS = {
  'Cache-Control': 'no-store',
  'Referrer-Policy': 'no-referrer',
  'X-Robots-Tag': 'noindex, nofollow',
};

/**
 * The email click redirect: `GET /daily/?<target>&c=…[&r=…]&s=…` (see libs/tracking/README.md).
 * Valid links get a 302 to the target on the site with utm_* merged in; anything else gets the invalid-link
 * page (400) or a 302 to the site root, never a redirect elsewhere. Express answers HEAD with this GET
 * handler; HEAD requests and non-browser user agents are recorded as suspected bots. Refused links are
 * counted (`once_tracking_links_refused_total{reason}`) and logged at a bounded rate (RefusedLinkLog).
 */
@Controller('daily')
export class DailyController {
  private readonly invalidPage: string;
  private readonly refusedTotal?: Counter<'reason'>;

  constructor(
    private readonly verifier: LinkVerifier,
    private readonly recorder: ClickRecorder,
    private readonly refusals: RefusedLinkLog,
    // The api's registry (PlatformModule); a DailyModule mounted without one keeps no metric.
    @Optional() @Inject(METRICS_REGISTRY) metrics?: Registry,
  ) {
    this.invalidPage = renderInvalidLinkPage(verifier.rootUrl);
    this.refusedTotal =
      metrics &&
      new Counter({
        name: 'once_tracking_links_refused_total',
        help: 'Tracking links refused by the redirect, by reason (unsigned, malformed, bad-signature, off-site, not-allowed)',
        labelNames: ['reason'],
        registers: [metrics],
      });
  }

  @Get()
  @RawInput()
  follow(@Req() req: RedirectRequest, @Res() res: ServerResponse): void {
    for (const [name, value] of Object.entries(REDIRECT_HEADERS)) res.setHeader(name, value);
    // The raw request target, not req.query: the link grammar is not key=value for its first segment.
    const result = this.verifier.verify(req.originalUrl ?? req.url ?? '');
    if (!result.ok) {
      this.refuse(req, res, result.reason);
      return;
    }

    const { link } = result;
    const visit = classifyVisit({ method: req.method ?? 'GET', userAgent: req.headers['user-agent'] });
    this.recorder.record({
      path: link.target,
      campaign: link.campaign,
      recipientId: link.recipientId,
      messageKey: link.messageKey,
      content: link.content,
      term: link.term,
      ...visit,
    });
    this.redirect(res, result.location);
  }

  private refuse(req: RedirectRequest, res: ServerResponse, reason: InvalidLinkReason): void {
    this.refusedTotal?.inc({ reason });
    // Above `info` pino-http leaves this route alone (quietRoutes): the line names its request itself.
    this.refusals.refused(reason, () => ({
      behaviour: this.verifier.invalidLinkBehaviour,
      ...(req.log ? {} : { reqId: req.id, req: { url: redactUrl(req.originalUrl ?? req.url ?? '') } }),
    }));
    if (this.verifier.invalidLinkBehaviour === 'redirect-root') {
      this.redirect(res, this.verifier.rootUrl);
      return;
    }
    res.statusCode = 400;
    for (const [name, value] of Object.entries(INVALID_LINK_PAGE_HEADERS)) res.setHeader(name, value);
    res.end(this.invalidPage); // Node drops the body of a HEAD response
  }

  private redirect(res: ServerResponse, location: string): void {
    res.statusCode = 302;
    res.setHeader('Location', location);
    res.end();
  }
}
