import { secretMatchers } from './configured-secret.matchers';
import { type RedactorOptions, validateOptions } from './redactor.options';
import { isSecretName, nameSegments } from './secret-name.rules';
import { errorFields, isErrorValue, ownEntries, safeString } from './thrown-value.reader';

export type { RedactorOptions } from './redactor.options';
export { isSecretName } from './secret-name.rules';

export const REDACTED = '[REDACTED]';

/** Names hidden whatever the segment rules say (headers, fields, query parameters), case-insensitive. */
export const DEFAULT_REDACTED_KEYS: ReadonlyArray<string | RegExp> = ['s', 'x-amz-security-token'];

/** Query parameters hidden only in URLs (`code` is an OAuth code there, an error code elsewhere). */
const QUERY_ONLY_KEYS = new Set(['code', 'state_token', 'ticket']);

/** Names whose unquoted value in text is a cookie list (`a=1; b=2`) or `Scheme credentials`. */
const COOKIE_SEGMENT = /^(?:cookie|cookies)$/;
const AUTHORIZATION_SEGMENT = /^(?:authorization|authentication)$/;
const COOKIE_VALUE = /^[^\s;,]*(?:;[ \t]*[^\s;=,]+(?:=[^\s;,]*)?)*/;
const SCHEME_VALUE = /^[^\s,;]+(?:[ \t]+[^\s,;]+)?/;

const MAX_DEPTH = 8;
const MAX_NODES = 2_000;
const MAX_ENTRIES = 100;
const DEFAULT_MAX_STRING = 20_000;
/** Longer input is cut to this before redaction; far beyond any `maxStringLength` cut, so no partial secret survives. */
const MAX_SCAN_FACTOR = 4;
/** Characters one {@link SecretRedactor.redact} call scans in all; strings past it become {@link TRUNCATED}. */
export const REDACT_SCAN_BUDGET = 400_000;
export const TRUNCATED = '[truncated]';

/** A PEM header; its block runs to the matching END line, or (cut) while it looks like PEM (base64, headers, escaped newlines). */
const PEM_BEGIN = /-----BEGIN ([A-Z0-9 ]{0,40})-----/g;
const PEM_BODY = /[A-Za-z0-9+/=\s\\:,-]*/y;
/** The scheme is bounded and starts a run: an unbounded one rescanned each long `a.a.a…` run from every word start. */
const URL_USERINFO = /(?<![a-z0-9+.-])([a-z][a-z0-9+.-]{0,31}:\/\/)[^\s/?#@]*(?:@[^\s/?#@]*)*@/gi;
const PARAM_SCHEME =
  /\b(Digest|AWS4-HMAC-SHA256|OAuth|Hawk|HOBA|Mutual|SCRAM-SHA-(?:1|256)|GoogleLogin|SharedAccessSignature)\s+[\w.-]+=(?:"(?:[^"\\]|\\.)*"|[^\s,"]*)(?:\s*,\s*[\w.-]+=(?:"(?:[^"\\]|\\.)*"|[^\s,"]*))*/gi;
const TOKEN_SCHEME =
  /\b(Bearer|Token|ApiKey|Api-Key|SharedKey|Negotiate|NTLM|SSWS|DPoP|Basic)(\s+)([A-Za-z0-9\-._~+/]+=*(?::[A-Za-z0-9\-._~+/=]+)?)/gi;
/** Secret names too short to trust as `name: value` in free text. */
const PROSE_SHORT_NAMES = new Set(['s', 'sig']);
/** Words after a capitalised `Bearer` that are prose, not a credential. */
const PROSE_AFTER_BEARER = new Set([
  'of',
  'and',
  'the',
  'is',
  'was',
  'to',
  'for',
  'token',
  'tokens',
  'header',
  'auth',
  'scheme',
  'missing',
  'required',
  'invalid',
  'expired',
  'realm',
]);

/** Well-known credential formats, hidden whole wherever they appear. */
const TOKEN_FORMATS: readonly RegExp[] = [
  /\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})/g,
  /\bxox[abposr]-[A-Za-z0-9-]{10,}/g,
  /\bxapp-\d-[A-Za-z0-9-]{10,}/g,
  /(?<=\bhttps:\/\/hooks\.slack\.com\/services\/)[A-Za-z0-9/_-]+/g,
  /(?<=\bhttps:\/\/(?:discord(?:app)?\.com)\/api\/webhooks\/)[A-Za-z0-9/_-]+/g,
  /\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,}/g,
  /\bwhsec_[A-Za-z0-9]{10,}/g,
  /\bAIza[0-9A-Za-z_-]{30,}/g,
  /\bya29\.[0-9A-Za-z_-]{10,}/g,
  /\bnpm_[A-Za-z0-9]{30,}/g,
  /\bglpat-[A-Za-z0-9_-]{20,}/g,
  /\bsk-(?:proj-|ant-[a-z0-9]{1,32}-)?[A-Za-z0-9_-]{20,}/g,
  /\bSG\.[A-Za-z0-9_-]{16,64}\.[A-Za-z0-9_-]{16,}/g,
  /\bhv[sb]\.[A-Za-z0-9_-]{16,}/g,
  /\bshp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}/g,
  /\bdop_v1_[a-f0-9]{64}/g,
  /\bhf_[A-Za-z]{30,}/g,
  /\bpypi-[A-Za-z0-9_-]{50,}/g,
  /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*){0,3}/g,
  /\b(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA|ABIA|ACCA)[A-Z0-9]{16,}\b/g,
];
/** An AWS secret access key: 40 base64-ish characters with upper, lower case and digits. */
const AWS_SECRET = /(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])/g;
/** A long random-looking token: mixed case, digits interleaved with letters. */
/** `/` ends it: a token is often a path segment (`/bot<id>:<token>/sendMessage`). */
const HIGH_ENTROPY = /(?<![A-Za-z0-9_+=-])[A-Za-z0-9_+-]{32,}={0,2}(?![A-Za-z0-9_+=-])/g;
const QUERY_PARAM = /([?&;])([^=&\s#?;]+)=([^&\s#;"'<>]*)/g;
/** `name` then `:`, `=` or `=>`; the name is not inside a path or a longer identifier. */
const NAME_OPERATOR = /(?<![\w$./\\-])(\\*["'`]?)([A-Za-z_$][\w$.-]*)\1[ \t]*(=>|:|=)\s*/g;
const HEADER_LINE = /^([ \t]*)([A-Za-z][\w-]*)([ \t]*:[ \t]*)(\S.*)$/gm;
const PG_DETAIL = /\(([^()]+)\)=\(([^()]*)\)/g;
/** A run of text without spaces or quotes: where percent-escaped text is looked for. */
const ENCODED_RUN = /[^\s"'<>`]+/g;

/** A value after `Token`, `Basic`…: not a capitalised word (`Token Verification failed`). */
function credentialLike(value: string): boolean {
  const inner = value.slice(1);
  return (
    value.length >= 8 &&
    (/\d/.test(value) ||
      /[-._~+/=]/.test(value) ||
      value.length >= 16 ||
      (/[a-z]/.test(value) && /[A-Z]/.test(inner)))
  );
}

function decodesToUserPassword(value: string): boolean {
  if (!/^[A-Za-z0-9+/]+=*$/.test(value) || value.length < 4) return false;
  const decoded = Buffer.from(value, 'base64').toString('latin1');
  return /^[\x20-\x7e]+:[\x20-\x7e]*$/.test(decoded);
}

function looksRandom(value: string, minDigits: number, minSwitches: number): boolean {
  if (!/[a-z]/.test(value) || !/[A-Z]/.test(value)) return false;
  const digits = value.replace(/\D/g, '').length;
  const switches = value.match(/[A-Za-z](?=\d)|\d(?=[A-Za-z])/g)?.length ?? 0;
  return digits >= minDigits && switches >= minSwitches;
}

/**
 * Hides secrets in what goes into admin error mail. By name: headers, object fields, query
 * parameters, `name=value` / `name: value` / JSON text whose name has a secret-ish segment (key,
 * token, secret, session, auth, password, signature, credential, cookie, private…, split on `-`,
 * `_`, `.` and camelCase; `keyboard` or `tokenType` are not). By value: configured secrets (raw and
 * encoded), auth schemes, URL credentials, PEM blocks, well-known token formats, AWS keys, JWTs.
 * Only the value is replaced by {@link REDACTED}; strings are cut after redaction.
 */
export class SecretRedactor {
  private readonly exactKeys = new Set<string>();
  private readonly keyPatterns: RegExp[] = [];
  private readonly secretMatchers: RegExp[];
  private readonly extraPatterns: RegExp[];
  private readonly maxStringLength: number;

  /** @throws Error naming the option when `options` are invalid (e.g. a secret shorter than `minSecretLength`). */
  constructor(options: RedactorOptions = {}) {
    const valid = validateOptions(options);
    for (const key of [...DEFAULT_REDACTED_KEYS, ...(valid.keys ?? [])]) {
      if (typeof key === 'string') this.exactKeys.add(key.toLowerCase());
      else this.keyPatterns.push(new RegExp(key.source, key.flags.replace(/[gy]/g, '')));
    }
    const minLength = valid.minSecretLength ?? 8;
    this.secretMatchers = secretMatchers([...new Set(valid.secrets ?? [])], minLength);
    this.extraPatterns = (valid.patterns ?? []).map(
      (pattern) =>
        new RegExp(pattern.source, pattern.flags.includes('g') ? pattern.flags : `${pattern.flags}g`),
    );
    this.maxStringLength = valid.maxStringLength ?? DEFAULT_MAX_STRING;
  }

  /**
   * The text with only the configured secrets hidden, in every form {@link redactString} knows
   * (raw, percent-encoded in any case or twice, over-encoded, JSON-escaped, hex, base64): a cheap
   * pass for text that is not worth the full scan, such as request URLs and headers in logs.
   */
  hideSecrets(text: string): string {
    if (this.secretMatchers.length === 0) return text;
    let out = text;
    for (const matcher of this.secretMatchers) out = out.replace(matcher, REDACTED);
    if (!out.includes('%')) return out;
    // Over-encoded forms (`S3cr%65t`) only show once decoded; then the whole text goes.
    let decoded = out;
    for (let round = 0; round < 2 && decoded.includes('%'); round++) {
      const next = safeDecode(decoded);
      if (next === decoded) break;
      decoded = next;
      if (this.secretMatchers.some((matcher) => ((matcher.lastIndex = 0), matcher.test(decoded))))
        return REDACTED;
    }
    return out;
  }

  /** Whether values under this header/field/parameter name are hidden. */
  isSensitiveKey(name: string): boolean {
    const lower = name.toLowerCase();
    return (
      this.exactKeys.has(lower) ||
      this.keyPatterns.some((pattern) => pattern.test(lower)) ||
      isSecretName(name)
    );
  }

  /** The text with secrets replaced, then cut to `maxLength` (default `maxStringLength`; `Infinity` keeps it whole). */
  redactString(input: string, maxLength = this.maxStringLength): string {
    return this.scan(
      typeof input === 'string' ? input : safeString(input),
      maxLength,
      scanLimitOf(maxLength),
    );
  }

  /** A redacted deep copy: sensitive keys hidden whole, every string scanned. Errors keep name, message, stack, own properties, cause and errors. */
  redact(value: unknown): unknown {
    return this.walk(value, 0, new WeakSet(), { nodes: 0, chars: REDACT_SCAN_BUDGET });
  }

  /** A string within what is left of the call's scan budget: cut to a quarter of what may be scanned, or {@link TRUNCATED}. */
  private budgeted(input: string, maxLength: number, budget: WalkBudget): string {
    const wanted = Math.min(input.length, scanLimitOf(maxLength));
    if (wanted <= budget.chars) {
      budget.chars -= wanted;
      return this.scan(input, maxLength, wanted);
    }
    const left = budget.chars;
    budget.chars = 0;
    if (left < 1_000) return TRUNCATED;
    return this.scan(input, Math.floor(left / MAX_SCAN_FACTOR), left);
  }

  private scan(input: string, maxLength: number, scanLimit: number): string {
    let text = input.length > scanLimit ? input.slice(0, scanLimit) : input;
    text = this.redactText(text);
    text = text.replace(ENCODED_RUN, (run) => (run.includes('%') ? this.redactEncoded(run) : run));
    for (const pattern of this.extraPatterns) text = text.replace(pattern, REDACTED);
    return text.length > maxLength || input.length > scanLimit
      ? `${text.slice(0, Math.min(maxLength, text.length))}…${TRUNCATED}`
      : text;
  }

  /**
   * A run with percent-escapes (a nested URL, a query in a query parameter) decoded once and
   * redacted; when that hid something, the redacted text encoded back the way the run was (or
   * shown decoded, when the run mixes raw and escaped forms of one character).
   */
  private redactEncoded(run: string): string {
    const decoded = percentDecode(run);
    if (decoded === undefined) return run;
    const redacted = this.redactText(decoded);
    if (redacted === decoded) return run;
    const encoded = new Set<string>();
    for (const match of run.matchAll(/%([0-9A-Fa-f]{2})/g)) {
      const code = parseInt(match[1], 16);
      if (code < 0x80) encoded.add(String.fromCharCode(code));
    }
    const raw = run.replace(/%[0-9A-Fa-f]{2}/g, '');
    const rawNonAscii = /[\u0080-\uffff]/.test(raw);
    // A character both raw and escaped (`/cb?next=https%3A%2F%2F…`): shown decoded, which is unambiguous.
    if ([...encoded].some((char) => raw.includes(char))) return redacted;
    let out = '';
    for (const char of redacted) {
      out += encoded.has(char) || (char > '\x7f' && !rawNonAscii) ? encodeURIComponent(char) : char;
    }
    return out;
  }

  private redactText(input: string): string {
    let text = redactPem(input);
    for (const matcher of this.secretMatchers) text = text.replace(matcher, REDACTED);
    text = text
      .replace(URL_USERINFO, `$1${REDACTED}@`)
      .replace(PARAM_SCHEME, `$1 ${REDACTED}`)
      .replace(TOKEN_SCHEME, (match, scheme: string, space: string, value: string) =>
        this.isSchemeCredential(scheme, value) ? `${scheme}${space}${REDACTED}` : match,
      );
    for (const format of TOKEN_FORMATS) text = text.replace(format, REDACTED);
    text = text
      .replace(AWS_SECRET, (match) => (looksRandom(match, 1, 1) ? REDACTED : match))
      .replace(HIGH_ENTROPY, (match) => (looksRandom(match, 2, 4) ? REDACTED : match))
      .replace(QUERY_PARAM, (match, separator: string, name: string, value: string) =>
        value && this.isSensitiveQueryName(safeDecode(name)) ? `${separator}${name}=${REDACTED}` : match,
      )
      .replace(HEADER_LINE, (match, indent: string, name: string, colon: string) =>
        this.isSensitiveKey(name) ? `${indent}${name}${colon}${REDACTED}` : match,
      )
      .replace(PG_DETAIL, (match, columns: string) =>
        columns.split(/,\s*/).some((column) => this.isSensitiveKey(column))
          ? `(${columns})=(${REDACTED})`
          : match,
      );
    return this.redactAssignments(text);
  }

  private isSensitiveQueryName(name: string): boolean {
    return QUERY_ONLY_KEYS.has(name.toLowerCase()) || this.isSensitiveKey(name);
  }

  private isSchemeCredential(scheme: string, value: string): boolean {
    if (scheme === 'Bearer' || scheme === 'BEARER') return !PROSE_AFTER_BEARER.has(value.toLowerCase());
    if (scheme.toLowerCase() === 'basic' && decodesToUserPassword(value)) return true;
    return credentialLike(value);
  }

  /** `name=value`, `name: value`, `"name": "value"` (also escaped, single-quoted and flat arrays) with a secret name. */
  private redactAssignments(text: string): string {
    let out = '';
    let last = 0;
    NAME_OPERATOR.lastIndex = 0;
    for (let match = NAME_OPERATOR.exec(text); match; match = NAME_OPERATOR.exec(text)) {
      const [whole, quote, name, operator] = match;
      const start = match.index + whole.length;
      if (!this.isSensitiveKey(name)) continue;
      // `a.b: x` is a path; `30 s: reset` is prose (`s`/`sig` are secret names in queries, headers and keys only).
      if (operator === ':' && !quote && (name.includes('.') || PROSE_SHORT_NAMES.has(name.toLowerCase())))
        continue;
      const end = this.valueEnd(text, start, name);
      if (end <= start || text.startsWith(REDACTED, start) || text.startsWith(`"${REDACTED}"`, start))
        continue;
      const value = text.slice(start, end);
      const quoted = /^(\\*["'`])/.exec(value)?.[1];
      out += text.slice(last, start) + (quoted ? `${quoted}${REDACTED}${quoted}` : REDACTED);
      last = end;
      NAME_OPERATOR.lastIndex = end;
    }
    return out + text.slice(last);
  }

  /** Where the value starting at `start` ends (its closing quote or bracket included). */
  private valueEnd(text: string, start: number, name: string): number {
    const quote = /^(\\*)(["'`])/.exec(text.slice(start, start + 16));
    if (quote) {
      const [open, backslashes, mark] = quote;
      if (backslashes) {
        const close = text.indexOf(open, start + open.length);
        return close < 0 ? lineEnd(text, start) : close + open.length;
      }
      for (let index = start + 1; index < text.length; index++) {
        if (text[index] === '\\') index++;
        else if (text[index] === mark) return index + 1;
      }
      return lineEnd(text, start);
    }
    if (text[start] === '{') return start;
    if (text[start] === '[') {
      const close = text.indexOf(']', start);
      const inner = close < 0 ? '' : text.slice(start + 1, close);
      return close < 0 || /[[{]/.test(inner) ? start : close + 1;
    }
    const segments = nameSegments(name);
    const run = segments.some((segment) => COOKIE_SEGMENT.test(segment))
      ? COOKIE_VALUE
      : segments.some((segment) => AUTHORIZATION_SEGMENT.test(segment))
        ? SCHEME_VALUE
        : undefined;
    if (run) return start + (run.exec(text.slice(start, start + 10_000))?.[0].length ?? 0);
    const stop = /[\s,;&)}\]"'<>]/.exec(text.slice(start));
    return stop ? start + stop.index : text.length;
  }

  private walk(value: unknown, depth: number, seen: WeakSet<object>, budget: WalkBudget): unknown {
    if (typeof value === 'string') return this.budgeted(value, this.maxStringLength, budget);
    if (typeof value === 'function') return '[function]';
    if (value === null || typeof value !== 'object') {
      return typeof value === 'bigint' || typeof value === 'symbol' ? String(value) : value;
    }
    if (seen.has(value)) return '[circular]';
    if (depth >= MAX_DEPTH) return '[too deep]';
    if (++budget.nodes > MAX_NODES) return '[too large]';
    seen.add(value);
    try {
      return this.walkObject(value, depth, seen, budget);
    } catch {
      // A Proxy trap or exotic object: shown as unreadable rather than failing the whole report.
      return '[unreadable]';
    }
  }

  private walkObject(value: object, depth: number, seen: WeakSet<object>, budget: WalkBudget): unknown {
    if (value instanceof Date) return Number.isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString();
    if (Buffer.isBuffer(value) || ArrayBuffer.isView(value))
      return `[${value.constructor.name} ${value.byteLength} bytes]`;
    if (Array.isArray(value) || value instanceof Set) {
      const all = Array.isArray(value) ? value : [...value];
      const items = all.slice(0, MAX_ENTRIES).map((item) => this.walk(item, depth + 1, seen, budget));
      return all.length > MAX_ENTRIES ? [...items, `…${all.length - MAX_ENTRIES} more`] : items;
    }
    const source: Record<string, unknown> = isErrorValue(value)
      ? errorFields(value)
      : value instanceof Map
        ? mapEntries(value)
        : ownEntries(value);
    const out: Record<string, unknown> = {};
    const entries = Object.entries(source);
    for (const [key, item] of entries.slice(0, MAX_ENTRIES)) {
      out[this.budgeted(key, 200, budget)] =
        this.isSensitiveKey(key) && item !== undefined && item !== null && item !== ''
          ? REDACTED
          : this.walk(item, depth + 1, seen, budget);
    }
    if (entries.length > MAX_ENTRIES) out['…'] = `${entries.length - MAX_ENTRIES} more`;
    return out;
  }
}

/** A Map's first entries as fields (keys in their string form). */
function mapEntries(map: Map<unknown, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  let count = 0;
  for (const [key, item] of map) {
    if (++count > MAX_ENTRIES + 1) break;
    out[typeof key === 'string' ? key : safeString(key)] = item;
  }
  return out;
}

interface WalkBudget {
  nodes: number;
  /** Characters still to scan in this call. */
  chars: number;
}

function scanLimitOf(maxLength: number): number {
  return Number.isFinite(maxLength) ? Math.max(maxLength * MAX_SCAN_FACTOR, 100_000) : Infinity;
}

/** PEM blocks replaced by {@link REDACTED}, in linear time however many BEGIN lines lack an END. */
function redactPem(text: string): string {
  if (!text.includes('-----BEGIN ')) return text;
  // Searches move forward only: an END line missing past one BEGIN is missing past every later one.
  const missing = new Set<string>();
  let out = '';
  let last = 0;
  PEM_BEGIN.lastIndex = 0;
  for (let match = PEM_BEGIN.exec(text); match; match = PEM_BEGIN.exec(text)) {
    const start = match.index;
    const bodyStart = start + match[0].length;
    const endLine = `-----END ${match[1]}-----`;
    let end = -1;
    if (!missing.has(endLine)) {
      const found = text.indexOf(endLine, bodyStart);
      if (found < 0) missing.add(endLine);
      else end = found + endLine.length;
    }
    if (end < 0) {
      PEM_BODY.lastIndex = bodyStart;
      PEM_BODY.exec(text);
      end = PEM_BODY.lastIndex;
    }
    out += `${text.slice(last, start)}${REDACTED}`;
    last = end;
    PEM_BEGIN.lastIndex = Math.max(end, bodyStart);
  }
  return out + text.slice(last);
}

function lineEnd(text: string, start: number): number {
  const newline = text.indexOf('\n', start);
  return newline < 0 ? text.length : newline;
}

/** Percent-escapes decoded as UTF-8 (never throws), or undefined when the text has none. */
function percentDecode(text: string): string | undefined {
  if (!/%[0-9A-Fa-f]{2}/.test(text)) return undefined;
  return text.replace(/(?:%[0-9A-Fa-f]{2})+/g, (escapes) =>
    Buffer.from(escapes.replace(/%/g, ''), 'hex').toString('utf8'),
  );
}

function safeDecode(value: string): string {
  // A throw per malformed name made text full of `;%x=` slow.
  if (!value.includes('%') || /%(?![0-9a-fA-F]{2})/.test(value)) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}
