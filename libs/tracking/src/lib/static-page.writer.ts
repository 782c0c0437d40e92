import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { escapeHtml } from './invalid-link.page';
import { STATIC_PAGE_SCRIPT } from './static-page.script';
import { MAX_TARGET_LENGTH, parsePublicTrackingOptions, PublicTrackingOptions } from './tracking.options';

/** Settings the static page embeds: public by construction (there is no secret field). */
export interface StaticPageConfig {
  origin: string;
  utm: Record<string, string | undefined>;
  allow: Array<string | { source: string; flags: string }> | null;
  invalid: 'error-page' | 'redirect-root';
  maxTargetLength: number;
}

/** `'sha256-…'` CSP source of the page's inline script. */
export const STATIC_PAGE_SCRIPT_HASH = `'sha256-${createHash('sha256').update(STATIC_PAGE_SCRIPT).digest('base64')}'`;

// JSON inside <script> must not be able to close the element or open a comment.
function scriptSafeJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026');
}

/**
 * Renders the static redirect page for hosting without a server (S3/CloudFront). It enforces same origin,
 * the path allowlist and the UTM merge in the browser, but does NOT verify signatures (no secret may be
 * published), so anyone can make it redirect to any allowed path of the site and forge clicks. The server's
 * `GET /daily/` is the safe default. Takes the public options only; secrets are not accepted.
 */
export function renderStaticRedirectPage(options: PublicTrackingOptions): string {
  const resolved = parsePublicTrackingOptions(options);
  const config: StaticPageConfig = {
    origin: resolved.baseUrl,
    utm: resolved.defaultUtm,
    allow: resolved.pathAllowlist
      ? resolved.pathAllowlist.map((rule) =>
          typeof rule === 'string' ? rule : { source: rule.source, flags: rule.flags },
        )
      : null,
    invalid: resolved.invalidLinkBehaviour,
    maxTargetLength: MAX_TARGET_LENGTH,
  };
  const csp = `default-src 'none'; script-src ${STATIC_PAGE_SCRIPT_HASH}; base-uri 'none'; form-action 'none'`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="referrer" content="no-referrer">
<meta name="robots" content="noindex">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Opening link…</title>
<script type="application/json" id="once-tracking-config">${scriptSafeJson(config)}</script>
</head>
<body>
<main id="invalid" hidden>
<h1>This link is not valid</h1>
<p>It may have been changed or cut short. Nothing was opened.</p>
<p><a href="${escapeHtml(`${resolved.baseUrl}/`)}">Go to the home page</a></p>
</main>
<noscript><p>This page needs JavaScript to open the link. <a href="${escapeHtml(`${resolved.baseUrl}/`)}">Go to the home page</a></p></noscript>
<script>${STATIC_PAGE_SCRIPT}</script>
</body>
</html>
`;
}

/** Writes the static page to `<outDir><trackingPath>index.html` (e.g. `out/daily/index.html`); returns its path. */
export async function writeStaticRedirectPage(
  outDir: string,
  options: PublicTrackingOptions,
): Promise<string> {
  const resolved = parsePublicTrackingOptions(options);
  const dir = join(outDir, ...resolved.trackingPath.split('/').filter(Boolean));
  await mkdir(dir, { recursive: true });
  const file = join(dir, 'index.html');
  await writeFile(file, renderStaticRedirectPage(options), 'utf8');
  return file;
}
