export const REDACTED = '[REDACTED]';

/** What the secret redactor hides in admin error mail, in addition to its built-in rules. */
export interface RedactorOptions {
  /** Header, field and query-parameter names whose values are hidden (case-insensitive strings or patterns). */
  keys?: Array<string | RegExp>;
  /** Literal secret values (API keys, passwords from config) hidden wherever they appear. Values shorter than 4 characters are ignored. */
  secrets?: string[];
  /** Extra patterns whose matches are hidden. */
  patterns?: RegExp[];
}

/** Names whose values are always hidden (headers, fields, query parameters), case-insensitive. */
export const DEFAULT_REDACTED_KEYS: ReadonlyArray<string | RegExp> = [
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
  'api-key',
  'api_key',
  'apikey',
  'client_secret',
  'private_key',
  'session',
  'sessionid',
  's',
  'sig',
  'signature',
  'credential',
  'credentials',
  /^x-amz-/i,
  /^aws_/i,
  /passw(or)?d|^pwd$/i,
  /secret/i,
  /token/i,
];

const MAX_DEPTH = 8;
const MAX_STRING = 20_000;

const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@:]+:[^\s/@]*@/gi;
const BEARER = /\b(Bearer)\s+[A-Za-z0-9\-._~+/]{6,}=*/gi;
const BASIC = /\b(Basic)\s+[A-Za-z0-9+/]{8,}={0,2}/g;
const JWT = /\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g;
const AWS_KEY_ID = /\b(?:AKIA|ASIA)[A-Z0-9]{16,}\b/g;
const QUERY_PARAM = /([?&;])([^=&\s#?;]+)=([^&\s#;"'<>]*)/g;
const ASSIGNMENT = /(["']?)([A-Za-z][A-Za-z0-9_.-]{2,})\1(\s*[:=]\s*)(["']?)([^\s"',;&}]+)/g;

function escapeRegExp(value: string): string {
  return value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Hides secrets in what goes into admin error mail, by key (headers, object fields, query
 * parameters, `name=value` text) and by value (AWS key ids, Bearer/Basic credentials, JWTs, URL credentials,
 * configured secret values, extra patterns).
 */
export class SecretRedactor {
  private readonly exactKeys = new Set<string>();
  private readonly keyPatterns: RegExp[] = [];
  private readonly secretPatterns: RegExp[];
  private readonly extraPatterns: RegExp[];

  constructor(options: RedactorOptions = {}) {
    for (const key of [...DEFAULT_REDACTED_KEYS, ...(options.keys ?? [])]) {
      if (typeof key === 'string') this.exactKeys.add(key.toLowerCase());
      else this.keyPatterns.push(new RegExp(key.source, key.flags.replace(/[gy]/g, '')));
    }
    this.secretPatterns = [...new Set(options.secrets ?? [])]
      .filter((secret) => secret.length >= 4)
      .sort((a, b) => b.length - a.length)
      .map((secret) => new RegExp(escapeRegExp(secret), 'g'));
    this.extraPatterns = (options.patterns ?? []).map(
      (pattern) =>
        new RegExp(pattern.source, pattern.flags.includes('g') ? pattern.flags : `${pattern.flags}g`),
    );
  }

  /** Whether values under this header/field/parameter name are hidden. */
  isSensitiveKey(name: string): boolean {
    const lower = name.toLowerCase();
    return this.exactKeys.has(lower) || this.keyPatterns.some((pattern) => pattern.test(lower));
  }

  redactString(input: string): string {
    let text = input.length > MAX_STRING ? `${input.slice(0, MAX_STRING)}…[truncated]` : input;
    for (const secret of this.secretPatterns) text = text.replace(secret, REDACTED);
    text = text
      .replace(URL_USERINFO, `$1${REDACTED}@`)
      .replace(BEARER, `$1 ${REDACTED}`)
      .replace(BASIC, `$1 ${REDACTED}`)
      .replace(JWT, REDACTED)
      .replace(AWS_KEY_ID, REDACTED)
      .replace(QUERY_PARAM, (match, separator: string, name: string) =>
        this.isSensitiveKey(safeDecode(name)) ? `${separator}${name}=${REDACTED}` : match,
      )
      .replace(
        ASSIGNMENT,
        (match, quote: string, name: string, operator: string, valueQuote: string, value: string) =>
          this.isSensitiveKey(name) && value !== REDACTED && !value.startsWith('[REDACTED')
            ? `${quote}${name}${quote}${operator}${valueQuote}${REDACTED}`
            : match,
      );
    for (const pattern of this.extraPatterns) text = text.replace(pattern, REDACTED);
    return text;
  }

  /** A redacted deep copy: sensitive keys hidden whole, every string scanned. Errors become `{ name, message, stack }`. */
  redact(value: unknown): unknown {
    return this.walk(value, 0, new WeakSet());
  }

  private walk(value: unknown, depth: number, seen: WeakSet<object>): unknown {
    if (typeof value === 'string') return this.redactString(value);
    if (value === null || typeof value !== 'object') {
      return typeof value === 'bigint' || typeof value === 'symbol' || typeof value === 'function'
        ? String(value)
        : value;
    }
    if (seen.has(value)) return '[circular]';
    if (depth >= MAX_DEPTH) return '[too deep]';
    seen.add(value);
    if (value instanceof Date) return value.toISOString();
    if (value instanceof Error) {
      return this.walk({ name: value.name, message: value.message, stack: value.stack }, depth + 1, seen);
    }
    if (Array.isArray(value)) return value.map((item) => this.walk(item, depth + 1, seen));
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      out[key] =
        this.isSensitiveKey(key) && item !== undefined && item !== null
          ? REDACTED
          : this.walk(item, depth + 1, seen);
    }
    return out;
  }
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}
