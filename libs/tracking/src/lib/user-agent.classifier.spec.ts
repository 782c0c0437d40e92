import { classifyUserAgent, classifyVisit } from './user-agent.classifier';

const CHROME =
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
const IPHONE =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1';

describe('classifyUserAgent', () => {
  it.each([
    [CHROME, 'browser'],
    [IPHONE, 'browser'],
    ['Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0', 'browser'],
    [
      'Mozilla/5.0 (Linux; Android 9; CUBOT X20) AppleWebKit/537.36 Chrome/120.0 Mobile Safari/537.36',
      'browser',
    ],
    [undefined, 'empty'],
    ['   ', 'empty'],
    ['Mozilla/5.0 (compatible; SafeLinks/1.0)', 'security-scanner'],
    ['Microsoft Office Existence Discovery', 'security-scanner'],
    ['Mozilla/4.0 (compatible; ms-office; MSOffice 16)', 'security-scanner'],
    ['Mozilla/5.0 (compatible; BarracudaCentral/1.0)', 'security-scanner'],
    ['Proofpoint URL Defense', 'security-scanner'],
    ['Mimecast URL Protect', 'security-scanner'],
    ['Mozilla/5.0 (compatible; Symantec Email Security)', 'security-scanner'],
    ['Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)', 'link-preview'],
    ['facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)', 'link-preview'],
    ['Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5', 'link-preview'],
    [
      'Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)',
      'link-preview',
    ],
    [
      'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0 Safari/537.36',
      'headless',
    ],
    ['curl/8.5.0', 'http-client'],
    ['Wget/1.21.4', 'http-client'],
    ['python-requests/2.32.3', 'http-client'],
    ['Go-http-client/1.1', 'http-client'],
    ['Java/17.0.2', 'http-client'],
    ['Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)', 'crawler'],
    ['Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)', 'crawler'],
    ['SomeNewThing/1.0 (+https://example.com/about)', 'crawler'],
    ['acmebot/3.1', 'crawler'],
  ])('%s is %s', (userAgent, expected) => {
    expect(classifyUserAgent(userAgent)).toBe(expected);
  });
});

describe('classifyVisit', () => {
  it('counts a browser GET as a click', () => {
    expect(classifyVisit({ method: 'GET', userAgent: CHROME })).toEqual({
      userAgentClass: 'browser',
      bot: false,
      botReason: null,
    });
  });

  it('flags HEAD requests, whatever the user agent', () => {
    expect(classifyVisit({ method: 'HEAD', userAgent: CHROME })).toEqual({
      userAgentClass: 'browser',
      bot: true,
      botReason: 'head-request',
    });
  });

  it('flags non-browser user agents', () => {
    expect(classifyVisit({ method: 'GET', userAgent: 'curl/8.5.0' })).toEqual({
      userAgentClass: 'http-client',
      bot: true,
      botReason: 'user-agent',
    });
    expect(classifyVisit({ method: 'get', userAgent: '' })).toMatchObject({
      bot: true,
      userAgentClass: 'empty',
    });
  });
});
