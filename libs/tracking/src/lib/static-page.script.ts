/**
 * Client-side redirect of the static `daily/index.html` (no build step, no dependencies). It applies the
 * server's target rules and UTM merge but cannot check signatures: a page has no secret to check them with.
 * Reads its settings from the `<script type="application/json" id="once-tracking-config">` element.
 */
export const STATIC_PAGE_SCRIPT = String.raw`(function () {
  'use strict';
  var config = JSON.parse(document.getElementById('once-tracking-config').textContent);
  var UTM_KEYS = ['source', 'medium', 'campaign', 'content', 'term', 'id'];
  var LINK_UTM = { c: 'campaign', ct: 'content', t: 'term' };
  var FORBIDDEN = /[\p{C}\p{Z}\\]/u;

  function allowed(pathname) {
    if (!config.allow) return true;
    return config.allow.some(function (rule) {
      return typeof rule === 'string' ? pathname.indexOf(rule) === 0 : new RegExp(rule.source, rule.flags).test(pathname);
    });
  }

  function destination(search) {
    var raw = search.charAt(0) === '?' ? search.slice(1) : search;
    var amp = raw.indexOf('&');
    var params = new URLSearchParams(amp < 0 ? '' : raw.slice(amp + 1));
    var target;
    try {
      target = decodeURIComponent(amp < 0 ? raw : raw.slice(0, amp));
    } catch (e) {
      return null;
    }
    if (!target || target.length > config.maxTargetLength || FORBIDDEN.test(target)) return null;
    if (target.charAt(0) !== '/' || target.charAt(1) === '/') return null;
    var url;
    try {
      url = new URL(target, config.origin + '/');
    } catch (e) {
      return null;
    }
    if (url.origin !== config.origin || url.username || url.password) return null;
    if (url.pathname.indexOf('//') === 0 || !allowed(url.pathname)) return null;

    var utm = {};
    UTM_KEYS.forEach(function (key) { utm[key] = config.utm[key]; });
    for (var name in LINK_UTM) {
      var values = params.getAll(name);
      if (values.length > 1) return null;
      if (values.length === 1 && values[0]) utm[LINK_UTM[name]] = values[0];
    }
    var added = new URLSearchParams();
    UTM_KEYS.forEach(function (key) {
      if (utm[key] && !url.searchParams.has('utm_' + key)) added.append('utm_' + key, utm[key]);
    });
    var extra = added.toString();
    var query = extra ? (url.search ? url.search + '&' : '?') + extra : url.search;
    return url.origin + url.pathname + query + url.hash;
  }

  var href = destination(location.search);
  if (href) {
    location.replace(href);
  } else if (config.invalid === 'redirect-root') {
    location.replace(config.origin + '/');
  } else {
    document.getElementById('invalid').hidden = false;
  }
})();`;
