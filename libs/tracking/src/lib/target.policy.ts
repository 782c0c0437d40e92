import { MAX_TARGET_LENGTH } from './tracking.options';

/** Why a target was refused. */
export type TargetRejection = 'malformed' | 'off-site' | 'not-allowed';

export type TargetCheck = { ok: true; url: URL } | { ok: false; reason: TargetRejection };

export type PathAllowlist = readonly (string | RegExp)[] | undefined;

// Control, format, unassigned, private-use and surrogate code points, any space separator, and backslash:
// URL parsers strip or reinterpret these ("/\evil", "/\t/evil"), so a target containing one is refused outright.
const FORBIDDEN_CHARACTERS = /[\p{C}\p{Z}\\]/u;

/**
 * Decides whether a link target may be redirected to. The target must be a root-relative path
 * ("/x", never "//x"), free of characters URL parsers reinterpret, must resolve with `new URL(target, origin)`
 * to exactly the site's origin, its normalised pathname (dot segments and %2e resolved) must not start with
 * "//", and must match the allowlist when there is one.
 */
export function checkTarget(target: string, origin: string, allowlist: PathAllowlist): TargetCheck {
  if (target.length === 0 || target.length > MAX_TARGET_LENGTH || FORBIDDEN_CHARACTERS.test(target)) {
    return { ok: false, reason: 'malformed' };
  }
  if (!target.startsWith('/') || target.startsWith('//')) return { ok: false, reason: 'off-site' };

  let url: URL;
  try {
    url = new URL(target, `${origin}/`);
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  // A normalised "//x" path ("/a/..//x") is same-origin here, but would be protocol-relative wherever it is
  // later used as a relative reference.
  if (url.origin !== origin || url.username !== '' || url.password !== '' || url.pathname.startsWith('//')) {
    return { ok: false, reason: 'off-site' };
  }
  if (allowlist && !allowlist.some((rule) => matches(rule, url.pathname))) {
    return { ok: false, reason: 'not-allowed' };
  }
  return { ok: true, url };
}

function matches(rule: string | RegExp, pathname: string): boolean {
  if (typeof rule === 'string') return pathname.startsWith(rule);
  rule.lastIndex = 0;
  return rule.test(pathname);
}
