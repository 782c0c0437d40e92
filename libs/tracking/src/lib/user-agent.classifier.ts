/** Coarse class of a client, stored with each click instead of the raw User-Agent. */
export type UserAgentClass =
  'browser' | 'empty' | 'security-scanner' | 'link-preview' | 'headless' | 'http-client' | 'crawler';

/** Why a hit counts as a suspected bot. */
export type BotReason = 'head-request' | 'user-agent';

export interface UserAgentRule {
  class: Exclude<UserAgentClass, 'browser' | 'empty'>;
  /** Who the rule is for (documentation). */
  name: string;
  pattern: RegExp;
}

/**
 * User agents whose hits are not people clicking, checked in order. Mail security gateways and link
 * previewers fetch every link in a message before (or instead of) the recipient; counting them would make
 * every email look clicked. Anything unmatched is counted as a browser.
 */
export const BOT_USER_AGENT_RULES: readonly UserAgentRule[] = [
  {
    class: 'security-scanner',
    name: 'Microsoft Defender Safe Links / Office link checks',
    pattern: /safelinks|Microsoft Office (?:Existence|Protocol) Discovery|\bms-office\b|\bMSOffice\b/i,
  },
  { class: 'security-scanner', name: 'Barracuda', pattern: /barracuda/i },
  { class: 'security-scanner', name: 'Proofpoint', pattern: /proofpoint/i },
  { class: 'security-scanner', name: 'Mimecast', pattern: /mimecast/i },
  {
    class: 'security-scanner',
    name: 'other mail security gateways',
    pattern:
      /symantec|messagelabs|sophos|trend ?micro|forcepoint|websense|ironport|fireeye|trellix|zscaler|fortiguard|fortinet|check ?point|cloudmark|spamtitan|hornetsecurity|libraesva|vadesecure/i,
  },
  {
    class: 'link-preview',
    name: 'chat and social link previews, webmail image proxies',
    pattern:
      /slackbot|slack-imgproxy|twitterbot|facebookexternalhit|facebot|linkedinbot|whatsapp|telegrambot|discordbot|skypeuripreview|microsoftpreview|redditbot|pinterestbot|embedly|iframely|googleimageproxy|yahoomailproxy|google-pagerenderer|mastodon|bluesky|cardyb/i,
  },
  {
    class: 'headless',
    name: 'headless and automated browsers',
    pattern: /headlesschrome|phantomjs|puppeteer|playwright|selenium|webdriver|lighthouse/i,
  },
  {
    class: 'http-client',
    name: 'command-line tools and HTTP libraries',
    pattern:
      /^(?:curl|wget|httpie|java|php|ruby)\b|python-requests|python-urllib|python-httpx|aiohttp|go-http-client|okhttp|apache-httpclient|libwww-perl|axios\/|node-fetch|undici|postmanruntime|scrapy|guzzlehttp|faraday|reqwest/i,
  },
  {
    class: 'crawler',
    name: 'search engines and crawlers (Googlebot, bingbot, …) and self-declared bots',
    pattern:
      /googlebot|adsbot-google|google-inspectiontool|bingbot|bingpreview|slurp|duckduckbot|baiduspider|yandex(?:bot|images)|applebot|ahrefsbot|semrushbot|mj12bot|dotbot|petalbot|bytespider|gptbot|claudebot|ccbot|perplexitybot|amazonbot|\b(?:bot|crawler|spider)\b|[a-z](?:bot|crawler|spider)\/|\+https?:\/\//i,
  },
];

/** Classifies a User-Agent header value. */
export function classifyUserAgent(userAgent: string | undefined): UserAgentClass {
  const value = userAgent?.trim() ?? '';
  if (value === '') return 'empty';
  return BOT_USER_AGENT_RULES.find((rule) => rule.pattern.test(value))?.class ?? 'browser';
}

export interface VisitClassification {
  userAgentClass: UserAgentClass;
  bot: boolean;
  botReason: BotReason | null;
}

/**
 * A hit is a suspected bot when it is a HEAD request (browsers never HEAD a link they follow) or its
 * User-Agent is not a browser's.
 */
export function classifyVisit(request: {
  method: string;
  userAgent: string | undefined;
}): VisitClassification {
  const userAgentClass = classifyUserAgent(request.userAgent);
  if (request.method.toUpperCase() === 'HEAD')
    return { userAgentClass, bot: true, botReason: 'head-request' };
  if (userAgentClass !== 'browser') return { userAgentClass, bot: true, botReason: 'user-agent' };
  return { userAgentClass, bot: false, botReason: null };
}
