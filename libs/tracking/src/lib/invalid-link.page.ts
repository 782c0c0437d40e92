const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => ESCAPES[char]);
}

/** Headers for the invalid-link page: nothing cached, nothing leaked, nothing loaded. */
export const INVALID_LINK_PAGE_HEADERS: Readonly<Record<string, string>> = {
  'Content-Type': 'text/html; charset=utf-8',
  'Content-Security-Policy':
    "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
};

/**
 * The page an invalid tracking link gets (HTTP 400). It echoes nothing from the request and offers a link to
 * the site root.
 */
export function renderInvalidLinkPage(rootUrl: string): string {
  const root = escapeHtml(rootUrl);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>Invalid link</title>
</head>
<body>
<h1>This link is not valid</h1>
<p>It may have been changed, cut short, or be too old. Nothing was opened.</p>
<p><a href="${root}">Go to the home page</a></p>
</body>
</html>
`;
}
