import { isSecretLogName, LOG_REDACTED, redactUrl } from './url.redactor';

type Headers = Record<string, unknown>;

/** Headers whose value is a URL: logged with {@link redactUrl}. */
const URL_HEADERS = new Set([
  'referer',
  'referrer',
  'location',
  'content-location',
  'x-original-url',
  'x-forwarded-uri',
  'x-rewrite-url',
  'x-original-uri',
  'x-envoy-original-path',
]);

/** A `Link` header: every `<URL>` in it redacted. */
function redactLinkHeader(value: string): string {
  return value.replace(/<([^>]*)>/g, (_match, url: string) => `<${redactUrl(url)}>`);
}

function redactHeaderValue(value: unknown, redact: (text: string) => string): unknown {
  if (typeof value === 'string') return redact(value);
  if (Array.isArray(value)) return value.map((item) => (typeof item === 'string' ? redact(item) : item));
  return value;
}

/** A copy of a request's or response's headers with secret-named ones hidden and URL-valued ones redacted. */
export function redactLogHeaders(headers: unknown): Headers | undefined {
  if (!headers || typeof headers !== 'object') return undefined;
  const out: Headers = {};
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (isSecretLogName(lower)) out[name] = LOG_REDACTED;
    else if (URL_HEADERS.has(lower)) out[name] = redactHeaderValue(value, redactUrl);
    else if (lower === 'link') out[name] = redactHeaderValue(value, redactLinkHeader);
    else out[name] = value;
  }
  return out;
}

/** What pino-std-serializers made of a request (the fields used here). */
interface SerializedRequest {
  id?: unknown;
  method?: string;
  url?: string;
  headers?: unknown;
  remoteAddress?: string;
  remotePort?: number;
}

/**
 * The `req` of every request's log lines: id, method, URL with secret query values hidden, redacted
 * headers, peer address. Express' parsed `query` and `params` are left out (the URL carries them).
 */
export function serializeLogRequest(req: SerializedRequest): Record<string, unknown> {
  return {
    id: req.id,
    method: req.method,
    url: typeof req.url === 'string' ? redactUrl(req.url) : req.url,
    headers: redactLogHeaders(req.headers),
    remoteAddress: req.remoteAddress,
    remotePort: req.remotePort,
  };
}

/** The `res` of a request's completion line: status and redacted headers (`Location`, `Set-Cookie`). */
export function serializeLogResponse(res: {
  statusCode?: unknown;
  headers?: unknown;
}): Record<string, unknown> {
  return { statusCode: res.statusCode, headers: redactLogHeaders(res.headers) };
}
