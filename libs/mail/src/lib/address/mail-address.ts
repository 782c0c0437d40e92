import { domainToASCII } from 'node:url';

/** An email address as it is sent, and the key that compares it. */
export interface NormalizedAddress {
  /** What SES gets: the local part as given, `@`, the domain in lower-case ASCII (punycode). */
  address: string;
  /** The comparison key (dedup, suppression, rate limit, ledger recipients): `address` lower-cased. */
  key: string;
}

/** A From mailbox: one address with an optional display name. */
export interface ParsedMailbox extends NormalizedAddress {
  displayName?: string;
  /** The header form: `address`, `Name <address>`, `"Quoted, Name" <address>` or RFC 2047 words. */
  header: string;
}

/** Thrown by the parsers here; `message` says what is wrong without repeating the value. */
export class AddressSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AddressSyntaxError';
  }
}

const ATEXT = "A-Za-z0-9!#$%&'*+/=?^_`{|}~-";
const LOCAL_PART = new RegExp(`^[${ATEXT}]+(\\.[${ATEXT}]+)*$`);
const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/**
 * The first character that must never be in a header value: C0 controls (CR, LF, NUL, TAB…), DEL,
 * C1 controls, U+2028/U+2029 (line and paragraph separators) and lone surrogates. Undefined if none.
 */
export function forbiddenHeaderChar(value: string): string | undefined {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code < 0x20 || (code >= 0x7f && code <= 0x9f) || code === 0x2028 || code === 0x2029)
      return describeChar(code);
    if (code >= 0xd800 && code <= 0xdbff) {
      const next = value.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) i++;
      else return `a lone surrogate ${hex(code)}`;
    } else if (code >= 0xdc00 && code <= 0xdfff) return `a lone surrogate ${hex(code)}`;
  }
  return undefined;
}

const hex = (code: number) => `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
const NAMED: Record<number, string> = {
  0x00: 'NUL',
  0x09: 'TAB',
  0x0a: 'LF',
  0x0d: 'CR',
  0x7f: 'DEL',
  0x2028: 'LINE SEPARATOR',
  0x2029: 'PARAGRAPH SEPARATOR',
};
const describeChar = (code: number) =>
  `the control character ${hex(code)}${NAMED[code] ? ` (${NAMED[code]})` : ''}`;

/** Bidi embeddings, overrides and isolates: they reorder what a mail client shows. */
const BIDI_CONTROL = /[\u200e\u200f\u202a-\u202e\u2066-\u2069]/;
/** Format characters (zero-width space, word joiner, soft hyphen, BOM…): invisible in a mail client. */
const FORMAT_CHAR = /\p{Cf}/u;

/**
 * A domain in lower-case ASCII (IDN labels to punycode, via the WHATWG `domainToASCII`), or an error
 * when it is not a DNS hostname with at least two labels (IP literals and `localhost` are refused).
 */
export function asciiDomain(domain: string): string {
  const ascii = domain.length > 0 && domain.length <= 253 ? domainToASCII(domain) : '';
  const labels = ascii.split('.');
  if (
    ascii.length === 0 ||
    ascii.length > 253 ||
    labels.length < 2 ||
    !labels.every((label) => LABEL.test(label)) ||
    /^[0-9]+$/.test(labels[labels.length - 1])
  ) {
    throw new AddressSyntaxError('the domain is not a valid hostname');
  }
  return ascii;
}

/**
 * Parses a bare address (`local@domain`, no display name, no spaces). The local part must be an
 * ASCII dot-atom (SES does not support SMTPUTF8); the domain may be an IDN and is sent as ASCII.
 * @throws AddressSyntaxError
 */
export function parseAddress(input: string): NormalizedAddress {
  const bad = forbiddenHeaderChar(input);
  if (bad) throw new AddressSyntaxError(`contains ${bad}`);
  if (/\s/.test(input)) throw new AddressSyntaxError('contains white space');
  if (input.length > 320) throw new AddressSyntaxError('is longer than 320 characters');
  const at = input.lastIndexOf('@');
  if (at < 0) throw new AddressSyntaxError('is not an email address (no "@")');
  const local = input.slice(0, at);
  if (local.length === 0 || local.length > 64)
    throw new AddressSyntaxError('the local part must be 1–64 characters');
  if (!LOCAL_PART.test(local)) {
    throw new AddressSyntaxError(
      "the local part must be ASCII letters, digits and !#$%&'*+/=?^_`{|}~- separated by single dots",
    );
  }
  const address = `${local}@${asciiDomain(input.slice(at + 1))}`;
  return { address, key: address.toLowerCase() };
}

/**
 * The comparison key of an address as suppression lists, rate limits and SES feedback see it:
 * lower-cased, domain in ASCII, display name dropped. Falls back to trimming and lower-casing for
 * strings that are not valid addresses (for example odd addresses in SES notifications).
 */
export function addressKey(input: string): string {
  const match = /<([^<>]+)>\s*$/.exec(input);
  const bare = (match ? match[1] : input).trim();
  try {
    return parseAddress(bare).key;
  } catch {
    return bare.toLowerCase();
  }
}

const PHRASE_ATOMS = new RegExp(`^[${ATEXT}]+( [${ATEXT}]+)*$`);

/**
 * Parses a From value: `address`, `Name <address>` or `"Quoted Name" <address>`. Refuses anything
 * that could make the header hold more or other than one mailbox: control characters and line
 * separators anywhere, unquoted specials (`,;:@<>()[]\"`) in the name, a name containing `@`, `<` or
 * `>` or a look-alike that NFKC folds to one (`＠`, `﹫`, `＜`: it would read as an address), bidi
 * controls and other invisible format characters (`\p{Cf}`: U+200B, U+2060, U+FEFF…).
 * @throws AddressSyntaxError
 */
export function parseMailbox(input: string): ParsedMailbox {
  const bad = forbiddenHeaderChar(input);
  if (bad) throw new AddressSyntaxError(`contains ${bad}`);
  if (BIDI_CONTROL.test(input)) throw new AddressSyntaxError('contains a bidi control character');
  const format = FORMAT_CHAR.exec(input);
  if (format) {
    throw new AddressSyntaxError(
      `contains the invisible format character ${hex(format[0].codePointAt(0) ?? 0)} (zero-width, joiner or similar)`,
    );
  }
  const open = input.indexOf('<');
  if (open < 0) {
    if (input.includes('>')) throw new AddressSyntaxError('has ">" without "<"');
    const parsed = parseAddress(input);
    return { ...parsed, header: parsed.address };
  }
  if (!input.endsWith('>') || input.indexOf('<', open + 1) >= 0 || input.indexOf('>') !== input.length - 1)
    throw new AddressSyntaxError('must be one mailbox: `address` or `Name <address>`');
  const parsed = parseAddress(input.slice(open + 1, -1));
  const rawName = input.slice(0, open).trim();
  const displayName = rawName.startsWith('"') ? unquote(rawName) : unquotedName(rawName);
  // Compatibility forms (fullwidth ＠＜＞, small ﹫…) read as the ASCII ones in a mail client.
  const folded = displayName?.normalize('NFKC');
  if (folded !== undefined && /[@<>]/.test(folded))
    throw new AddressSyntaxError(
      'the display name must not contain "@", "<" or ">" (or look-alikes such as "＠")',
    );
  if (folded !== undefined && folded.includes('=?'))
    throw new AddressSyntaxError('the display name must not contain "=?" (RFC 2047 words are encoded here)');
  if (displayName !== undefined && displayName.trim() !== displayName)
    throw new AddressSyntaxError('the display name must not start or end with white space');
  if (displayName !== undefined && displayName.length > 100)
    throw new AddressSyntaxError('the display name is longer than 100 characters');
  return {
    ...parsed,
    displayName,
    header:
      displayName === undefined ? parsed.address : `${encodeDisplayName(displayName)} <${parsed.address}>`,
  };
}

function unquotedName(name: string): string | undefined {
  if (name.length === 0) return undefined;
  if (/[,;:@<>()[\]\\"]/.test(name)) {
    throw new AddressSyntaxError(
      'the display name has one of ,;:@<>()[]\\" outside double quotes; quote it: "Name, Inc" <address>',
    );
  }
  return name.replace(/ {2,}/g, ' ');
}

function unquote(name: string): string | undefined {
  let value = '';
  for (let i = 1; i < name.length; i++) {
    const char = name[i];
    if (char === '\\') {
      const next = name[++i];
      if (next === undefined) break;
      value += next;
    } else if (char === '"') {
      if (i !== name.length - 1) throw new AddressSyntaxError('text after the quoted display name');
      return value.length > 0 ? value : undefined;
    } else value += char;
  }
  throw new AddressSyntaxError('the quoted display name is not closed');
}

/** Atoms as they are, other ASCII as a quoted-string, non-ASCII as RFC 2047 B words (UTF-8). */
function encodeDisplayName(name: string): string {
  if (PHRASE_ATOMS.test(name)) return name;
  if (/^[\x20-\x7e]*$/.test(name)) return `"${name.replace(/[\\"]/g, (char) => `\\${char}`)}"`;
  const words: string[] = [];
  let chunk = '';
  for (const char of name) {
    if (Buffer.byteLength(chunk + char) > 45) {
      words.push(chunk);
      chunk = '';
    }
    chunk += char;
  }
  if (chunk) words.push(chunk);
  return words.map((word) => `=?UTF-8?B?${Buffer.from(word).toString('base64')}?=`).join(' ');
}

const URI_CHARS = /^[A-Za-z0-9\-._~:/?#[\]@!$&'()*+;=%]*$/;

/**
 * The `List-Unsubscribe` form of an https URL: serialized by the WHATWG URL parser (IDN hosts to
 * punycode, other non-ASCII percent-encoded). Refuses what a parser would silently drop or that
 * could split the header: controls, white space, `\`, `,`, `<`, `>`, `"`, credentials, non-https.
 * @throws AddressSyntaxError
 */
export function unsubscribeUrl(input: string): string {
  const bad = forbiddenHeaderChar(input);
  if (bad) throw new AddressSyntaxError(`contains ${bad}`);
  if (/\s/u.test(input)) throw new AddressSyntaxError('contains white space (percent-encode it as %20)');
  const special = /[\\,<>"]/.exec(input);
  if (special) throw new AddressSyntaxError(`contains "${special[0]}" (percent-encode it)`);
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw new AddressSyntaxError('is not a URL');
  }
  if (url.protocol !== 'https:') throw new AddressSyntaxError('must be an https URL');
  if (url.username || url.password) throw new AddressSyntaxError('must not contain credentials');
  asciiDomain(url.hostname);
  if (url.port) throw new AddressSyntaxError('must not name a port');
  if (!URI_CHARS.test(url.href) || /[,]/.test(url.href))
    throw new AddressSyntaxError('does not serialize to a plain URI');
  return url.href;
}

const MAILTO_QUERY = /^\?[A-Za-z0-9\-._~!$&'()*+;=:@/?%]*$/;
/** RFC 6068 hfields allowed in an unsubscribe mailto: `to`, `cc`, `bcc` would add recipients. */
const MAILTO_HFIELDS = new Set(['subject', 'body']);
/** atext a mailto `to` part must carry percent-encoded (RFC 6068 allows only unreserved and some-delims). */
const MAILTO_LOCAL_ESCAPE = /[#%&/=?^`{|}]/g;

function decodeMailtoPart(part: string, what: string): string {
  let decoded: string;
  try {
    decoded = decodeURIComponent(part);
  } catch {
    throw new AddressSyntaxError(`the ${what} is not valid percent-encoded UTF-8`);
  }
  const bad = forbiddenHeaderChar(decoded);
  if (bad) throw new AddressSyntaxError(`the ${what} contains ${bad} once percent-decoded`);
  return decoded;
}

/**
 * The `List-Unsubscribe` form of a mailto target: `mailto:` + the normalized address (one
 * recipient; atext RFC 6068 reserves is percent-encoded) + an optional `?query` of `subject=` and
 * `body=` hfields in URI characters (no `,`). Refuses other hfields (`to`, `cc`, `bcc` would add
 * recipients) and values that percent-decode to controls or line separators. Accepts a bare
 * address or a `mailto:` URL.
 * @throws AddressSyntaxError
 */
export function unsubscribeMailto(input: string): string {
  const bad = forbiddenHeaderChar(input);
  if (bad) throw new AddressSyntaxError(`contains ${bad}`);
  const body = input.startsWith('mailto:') ? input.slice('mailto:'.length) : input;
  const question = body.indexOf('?');
  const query = question >= 0 ? body.slice(question) : '';
  if (query && !MAILTO_QUERY.test(query)) {
    throw new AddressSyntaxError('the query must be URI characters without "," (percent-encode the rest)');
  }
  for (const hfield of query ? query.slice(1).split('&') : []) {
    const equals = hfield.indexOf('=');
    const name = equals > 0 ? decodeMailtoPart(hfield.slice(0, equals), 'hfield name').toLowerCase() : '';
    if (!MAILTO_HFIELDS.has(name)) {
      throw new AddressSyntaxError('the query may only hold subject=… and body=… fields, joined by "&"');
    }
    decodeMailtoPart(hfield.slice(equals + 1), `${name} field`);
  }
  const { address } = parseAddress(question >= 0 ? body.slice(0, question) : body);
  const at = address.lastIndexOf('@');
  const local = address
    .slice(0, at)
    .replace(MAILTO_LOCAL_ESCAPE, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`);
  return `mailto:${local}${address.slice(at)}${query}`;
}
