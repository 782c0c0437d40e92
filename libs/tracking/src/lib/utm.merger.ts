import { UTM_KEYS, UtmValues } from './tracking.options';

/**
 * Returns `url` as an absolute href with the utm_* values appended (URLSearchParams encoding, in
 * {@link UTM_KEYS} order). The existing query is kept byte for byte, the fragment stays last, and a utm_*
 * parameter already on the URL is never overwritten; empty values are skipped.
 */
export function mergeUtm(url: URL, utm: UtmValues): string {
  const existing = url.searchParams;
  const added = new URLSearchParams();
  for (const key of UTM_KEYS) {
    const value = utm[key];
    if (value && !existing.has(`utm_${key}`)) added.append(`utm_${key}`, value);
  }
  const extra = added.toString();
  const search = extra ? (url.search ? `${url.search}&${extra}` : `?${extra}`) : url.search;
  return `${url.origin}${url.pathname}${search}${url.hash}`;
}
