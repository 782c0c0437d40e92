/** Regexes that find configured secret values (from the app config) in every form admin mail or a log line may hold them. */

function escapeRegExp(value: string): string {
  return value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The part of `encode(pad + secret)` that depends on the secret alone, for each of 3 alignments. */
function base64Cores(secret: string, encoding: 'base64' | 'base64url'): string[] {
  const bytes = Buffer.from(secret);
  return [0, 1, 2].map((shift) => {
    const encoded = Buffer.concat([Buffer.alloc(shift), bytes])
      .toString(encoding)
      .replace(/=+$/, '');
    return encoded.slice(Math.ceil((8 * shift) / 6), Math.floor((8 * (shift + bytes.length)) / 6));
  });
}

/** Source of a regex matching `value` with percent-escapes and hex digits in either case. */
function caseInsensitiveEscapes(value: string): string {
  return escapeRegExp(value).replace(
    /%([0-9A-F]{2})/g,
    (_, hex: string) => `%(?:${hex}|${hex.toLowerCase()})`,
  );
}

/** `escape()`'s encoding (deprecated, still met): all but `A-Za-z0-9@*_+-./` as `%XX` or `%uXXXX`. */
function escapeStyle(value: string): string {
  return value.replace(/[^A-Za-z0-9@*_+\-./]/g, (char) => {
    const code = char.charCodeAt(0);
    return code < 0x100
      ? `%${code.toString(16).toUpperCase().padStart(2, '0')}`
      : `%u${code.toString(16).toUpperCase().padStart(4, '0')}`;
  });
}

/** Builds the regexes that find configured secrets in their raw and encoded forms. */
export function secretMatchers(secrets: string[], minLength: number): RegExp[] {
  if (secrets.length === 0) return [];
  const exact = new Set<string>();
  const escaped = new Set<string>();
  const hex = new Set<string>();
  for (const secret of secrets) {
    exact.add(secret);
    exact.add(JSON.stringify(secret).slice(1, -1));
    for (const core of [...base64Cores(secret, 'base64'), ...base64Cores(secret, 'base64url')]) {
      if (core.length >= minLength) exact.add(core);
    }
    const once = encodeURIComponent(secret);
    const forms = [
      once,
      encodeURI(secret),
      once.replace(/%20/g, '+'),
      encodeURIComponent(once),
      new URLSearchParams({ s: secret }).toString().slice(2),
      escapeStyle(secret),
    ];
    for (const form of forms) {
      if (form !== secret) escaped.add(form);
    }
    hex.add(Buffer.from(secret).toString('hex'));
  }
  const bySize = (values: Set<string>) => [...values].sort((a, b) => b.length - a.length);
  return [
    new RegExp(bySize(exact).map(escapeRegExp).join('|'), 'g'),
    ...(escaped.size ? [new RegExp(bySize(escaped).map(caseInsensitiveEscapes).join('|'), 'g')] : []),
    new RegExp(bySize(hex).join('|'), 'gi'),
  ];
}
