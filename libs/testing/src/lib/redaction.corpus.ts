/** What kind of secret a corpus item plants (for per-class counts of leaks). */
export type RedactionClass =
  | 'auth-scheme'
  | 'header-name'
  | 'aws-secret-key'
  | 'url-userinfo'
  | 'query-param'
  | 'json-in-message'
  | 'name-value-text'
  | 'cookie'
  | 'pem'
  | 'token-format'
  | 'configured'
  | 'nested-field'
  | 'error-property'
  | 'cause-chain'
  | 'non-error'
  | 'truncation';

/** Where a corpus item hides its secret on the way into an admin error mail. */
export type RedactionPlant =
  /** A request header (HTTP source). */
  | { in: 'header'; name: string; value: string }
  /** A raw `name=value` fragment of the request's query string (HTTP source). */
  | { in: 'query'; query: string }
  /** Part of the thrown error's message (also its subject and stack). */
  | { in: 'message'; text: string }
  /** A line of the thrown error's stack only. */
  | { in: 'stack'; text: string }
  /** Fields of the worker/job context (details). */
  | { in: 'detail'; value: Record<string, unknown> }
  /** Own enumerable properties of the thrown error (a pg `detail`, an AWS SDK `$response`…). */
  | { in: 'property'; value: Record<string, unknown> }
  /** The message of the error's `cause` (or of its cause's cause). */
  | { in: 'cause'; text: string }
  /** The message of one of an AggregateError's `errors`. */
  | { in: 'aggregate'; text: string }
  /** A non-Error value thrown on its own. */
  | { in: 'thrown'; value: unknown };

/** One planted secret: a unique value, its class, and how it is planted. */
export interface RedactionCorpusItem {
  id: string;
  class: RedactionClass;
  /** The value that must not appear in the mail, raw or encoded. */
  secret: string;
  plant: RedactionPlant;
  /** The app's config holds this value (pass {@link configuredSecrets} as the redactor's `secrets`). */
  configured?: true;
}

const PEM_BODY_1 = 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj';
const PEM_BODY_2 = 'MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu';
const PEM_BODY_3 = 'MHcCAQEEIIrYSSNQFaA2Hwf1duRSxKtLYX5CB04fSeQ6tF1aY/PuoAoGCCqGSM49';
const PEM_BODY_4 = 'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtz';

const pem = (label: string, body: string, end = true): string =>
  `-----BEGIN ${label}-----\n${body}\nQ29ycHVzUGVtTGluZVR3b0FuZE1vcmVCeXRlcw==\n${end ? `-----END ${label}-----` : ''}`;

const base64 = (value: string): string => Buffer.from(value).toString('base64');
const base64url = (value: string): string => Buffer.from(value).toString('base64url');
const hex = (value: string): string => Buffer.from(value).toString('hex');

const FILLER = 'lorem ipsum dolor sit amet '.repeat(800);

/** Config values of the corpus (`configured` items): what the platform would pass as secrets. */
export const CONFIGURED_SECRETS = {
  databasePassword: 'Pg-corpus-Db-pw-5e1f',
  redisPassword: 'redis:corpus@pw,7c2',
  adminToken: 'admin-corpus-token-93af1be07c',
  trackingSecret: 'tracking-corpus-secret-6d0f2b9e8a7c4d3e1f',
  awsSecret: 'q8Jz3bWcX2nY7rT1uV5kL9mP0sD4fG6hA8eR2tBy',
  spaced: 'corpus secret with spaces 41d7',
  quoted: 'corpus"quote\\back-8c3e',
  b64: 'corpus-base64-secret-11ab',
  b64url: 'corpus~b64url?secret>22cd',
  hex: 'corpus-hex-secret-33ef',
  basic: 'corpus-basic-secret-44aa',
  embedded: 'corpus-embedded-secret-55bb',
  doubleEncoded: 'corpus/double&encoded=66cc',
  percent: 'corpus%percent#secret 77dd',
} as const;

/**
 * Secrets planted where admin error mail could leak them, for redaction tests: every value is
 * unique, so a leak names its item. Used by the mail lib's unit and e2e tests and the apps' e2e.
 */
export const REDACTION_CORPUS: readonly RedactionCorpusItem[] = [
  // Auth schemes (header values and free text).
  {
    id: 'bearer-short-header',
    class: 'auth-scheme',
    secret: 'zq7Lw',
    plant: { in: 'header', name: 'Authorization', value: 'Bearer zq7Lw' },
  },
  {
    id: 'bearer-short-text',
    class: 'auth-scheme',
    secret: 'xyzKq2',
    plant: { in: 'message', text: 'upstream rejected Bearer xyzKq2 as expired' },
  },
  {
    id: 'bearer-lowercase-text',
    class: 'auth-scheme',
    secret: 'b7f3c9d2e1a04f5b',
    plant: { in: 'message', text: 'sent header authorization=bearer b7f3c9d2e1a04f5b' },
  },
  {
    id: 'token-scheme',
    class: 'auth-scheme',
    secret: '9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b',
    plant: { in: 'message', text: 'DRF said 401 for Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b' },
  },
  {
    id: 'basic-header',
    class: 'auth-scheme',
    secret: base64('ops:B4sic-corpus-pw'),
    plant: { in: 'header', name: 'Proxy-Authorization', value: `Basic ${base64('ops:B4sic-corpus-pw')}` },
  },
  {
    id: 'basic-text-short',
    class: 'auth-scheme',
    secret: base64('u:Pw9x'),
    plant: { in: 'stack', text: `at fetch (Authorization: Basic ${base64('u:Pw9x')})` },
  },
  {
    id: 'digest-response',
    class: 'auth-scheme',
    secret: '6629fae49393a05397450978507c4ef1',
    plant: {
      in: 'message',
      text: 'proxy refused Digest username="ops", realm="once", nonce="dcd98b7102dd2f0e", uri="/", response="6629fae49393a05397450978507c4ef1"',
    },
  },
  {
    id: 'aws4-signature',
    class: 'auth-scheme',
    secret: 'fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024',
    plant: {
      in: 'message',
      text: 'S3 403 with AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261122/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024',
    },
  },
  {
    id: 'aws4-credential-header',
    class: 'auth-scheme',
    secret: 'c0ffee15bad2cafe0123456789abcdef0123456789abcdef0123456789abcdef',
    plant: {
      in: 'header',
      name: 'X-Forwarded-Authorization',
      value:
        'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261122/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=c0ffee15bad2cafe0123456789abcdef0123456789abcdef0123456789abcdef',
    },
  },
  {
    id: 'apikey-scheme',
    class: 'auth-scheme',
    secret: 'VnVlY29ycHVzQXBpS2V5U2NoZW1l',
    plant: { in: 'message', text: 'elastic answered 401 to ApiKey VnVlY29ycHVzQXBpS2V5U2NoZW1l' },
  },
  {
    id: 'negotiate-scheme',
    class: 'auth-scheme',
    secret: 'YIIGhgYGKwYBBQUCoIIGejCCBnagMDAuBgkqhkiC9xIBAgIGCSqGSIb3EgECAgYK',
    plant: {
      in: 'aggregate',
      text: 'kerberos: Negotiate YIIGhgYGKwYBBQUCoIIGejCCBnagMDAuBgkqhkiC9xIBAgIGCSqGSIb3EgECAgYK rejected',
    },
  },

  // Secret-bearing headers whose names are outside any exact list.
  {
    id: 'x-auth',
    class: 'header-name',
    secret: 'xauth-corpus-1f0e',
    plant: { in: 'header', name: 'X-Auth', value: 'xauth-corpus-1f0e' },
  },
  {
    id: 'x-apikey',
    class: 'header-name',
    secret: 'xapikey-corpus-2e1d',
    plant: { in: 'header', name: 'x-apikey', value: 'xapikey-corpus-2e1d' },
  },
  {
    id: 'x-session-id',
    class: 'header-name',
    secret: 'sess-corpus-3d2c-9a8b',
    plant: { in: 'header', name: 'x-session-id', value: 'sess-corpus-3d2c-9a8b' },
  },
  {
    id: 'x-goog-api-key',
    class: 'header-name',
    secret: 'goog-corpus-4c3b',
    plant: { in: 'header', name: 'x-goog-api-key', value: 'goog-corpus-4c3b' },
  },
  {
    id: 'x-csrf-token',
    class: 'header-name',
    secret: 'csrf-corpus-5b4a',
    plant: { in: 'header', name: 'X-CSRF-Token', value: 'csrf-corpus-5b4a' },
  },
  {
    id: 'x-amz-security-token',
    class: 'header-name',
    secret: 'IQoJb3JpZ2luX2VjEFAaCXVzLWVhc3QtMSJHcorpus',
    plant: {
      in: 'header',
      name: 'X-Amz-Security-Token',
      value: 'IQoJb3JpZ2luX2VjEFAaCXVzLWVhc3QtMSJHcorpus',
    },
  },
  {
    id: 'private-token',
    class: 'header-name',
    secret: 'privtok-corpus-6a59',
    plant: { in: 'header', name: 'Private-Token', value: 'privtok-corpus-6a59' },
  },
  {
    id: 'x-vault-token',
    class: 'header-name',
    secret: 'hvs.CAESIcorpusVault7f68',
    plant: { in: 'header', name: 'X-Vault-Token', value: 'hvs.CAESIcorpusVault7f68' },
  },
  {
    id: 'x-hub-signature',
    class: 'header-name',
    secret: 'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17',
    plant: {
      in: 'header',
      name: 'X-Hub-Signature-256',
      value: 'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17',
    },
  },
  {
    id: 'x-functions-key',
    class: 'header-name',
    secret: 'funckey-corpus-8e77',
    plant: { in: 'header', name: 'x-functions-key', value: 'funckey-corpus-8e77' },
  },
  {
    id: 'x-client-secret',
    class: 'header-name',
    secret: 'clisec-corpus-9d86',
    plant: { in: 'header', name: 'X-Client-Secret', value: 'clisec-corpus-9d86' },
  },
  {
    id: 'x-refresh-token',
    class: 'header-name',
    secret: 'refresh-corpus-0c95',
    plant: { in: 'header', name: 'x-refresh-token', value: 'refresh-corpus-0c95' },
  },
  {
    id: 'x-db-passwd',
    class: 'header-name',
    secret: 'passwd-corpus-1ba4',
    plant: { in: 'header', name: 'X-Db-Passwd', value: 'passwd-corpus-1ba4' },
  },

  // AWS secret access keys (40 characters, base64-ish) anywhere.
  {
    id: 'aws-secret-message',
    class: 'aws-secret-key',
    secret: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKY',
    plant: {
      in: 'message',
      text: 'signing failed with wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKY for us-east-1',
    },
  },
  {
    id: 'aws-secret-stack',
    class: 'aws-secret-key',
    secret: '7YtQTznxkJZrE0vECRGu+4A2e6exxUKuE7M0laPT',
    plant: { in: 'stack', text: 'at sign (creds 7YtQTznxkJZrE0vECRGu+4A2e6exxUKuE7M0laPT)' },
  },
  {
    id: 'aws-secret-detail',
    class: 'aws-secret-key',
    secret: '56jTO88EqZRgAeBBQfIVeq9QTWddbGpKy9zDmyjM',
    plant: { in: 'detail', value: { note: 'rotated from 56jTO88EqZRgAeBBQfIVeq9QTWddbGpKy9zDmyjM' } },
  },
  {
    id: 'aws-secret-cause',
    class: 'aws-secret-key',
    secret: 'HJYkG8agROusXVnFgi2KbXX5K8tUFu2oGV5taCqh',
    plant: { in: 'cause', text: 'InvalidSignature: secret HJYkG8agROusXVnFgi2KbXX5K8tUFu2oGV5taCqh' },
  },
  {
    id: 'aws-key-id',
    class: 'aws-secret-key',
    secret: 'AKIAQCORPUS7EXAMPLE1',
    plant: { in: 'message', text: 'user AKIAQCORPUS7EXAMPLE1 is not authorized' },
  },
  {
    id: 'aws-session-key-id',
    class: 'aws-secret-key',
    secret: 'ASIAQCORPUS8EXAMPLE2',
    plant: { in: 'property', value: { accessKeyId: 'ASIAQCORPUS8EXAMPLE2', region: 'eu-west-1' } },
  },

  // URL userinfo.
  {
    id: 'url-empty-user',
    class: 'url-userinfo',
    secret: 'RedisOnlyPw-6f1a',
    plant: { in: 'message', text: 'connect redis://:RedisOnlyPw-6f1a@cache.internal:6379/0 ECONNREFUSED' },
  },
  {
    id: 'url-at-in-password',
    class: 'url-userinfo',
    secret: 'p@ss-with-at-7e2b',
    plant: { in: 'message', text: 'pool error postgres://once:p@ss-with-at-7e2b@db.internal:5432/once' },
  },
  {
    id: 'url-comma-in-password',
    class: 'url-userinfo',
    secret: 'pw,with,commas-8d3c',
    plant: { in: 'stack', text: 'at connect (amqp://guest:pw,with,commas-8d3c@mq.internal:5672)' },
  },
  {
    id: 'url-colon-in-password',
    class: 'url-userinfo',
    secret: 'pw:colon:9c4d',
    plant: { in: 'detail', value: { target: 'mongodb+srv://app:pw:colon:9c4d@cluster0.example.net/db' } },
  },
  {
    id: 'url-plain',
    class: 'url-userinfo',
    secret: 'plainUrlPw0b5e',
    plant: { in: 'cause', text: 'fetch https://svc:plainUrlPw0b5e@api.partner.example/v1 failed' },
  },

  // Query parameters.
  {
    id: 'query-key',
    class: 'query-param',
    secret: 'qkey-corpus-1a6f',
    plant: { in: 'query', query: 'key=qkey-corpus-1a6f' },
  },
  {
    id: 'query-auth',
    class: 'query-param',
    secret: 'qauth-corpus-2b7e',
    plant: { in: 'query', query: 'auth=qauth-corpus-2b7e' },
  },
  {
    id: 'query-code',
    class: 'query-param',
    secret: 'qcode-corpus-3c8d',
    plant: { in: 'query', query: 'code=qcode-corpus-3c8d' },
  },
  {
    id: 'query-access-key',
    class: 'query-param',
    secret: 'qaccess-corpus-4d9c',
    plant: { in: 'query', query: 'access_key=qaccess-corpus-4d9c' },
  },
  {
    id: 'query-token',
    class: 'query-param',
    secret: 'qtoken-corpus-5e0b',
    plant: { in: 'query', query: 'access_token=qtoken-corpus-5e0b' },
  },
  {
    id: 'query-encoded-password',
    class: 'query-param',
    secret: 'q pw&corpus=6f1a',
    plant: { in: 'query', query: `password=${encodeURIComponent('q pw&corpus=6f1a')}` },
  },
  {
    id: 'query-sig',
    class: 'query-param',
    secret: 'qsig-corpus-7a2b',
    plant: { in: 'query', query: 's=qsig-corpus-7a2b' },
  },
  {
    id: 'query-amz-signature',
    class: 'query-param',
    secret: 'b1946ac92492d2347c6235b4d2611184corpus',
    plant: { in: 'query', query: 'X-Amz-Signature=b1946ac92492d2347c6235b4d2611184corpus' },
  },
  {
    id: 'query-in-message-url',
    class: 'query-param',
    secret: 'qmsg-corpus-8b3c',
    plant: { in: 'message', text: 'GET https://partner.example/hook?id=7&apikey=qmsg-corpus-8b3c failed' },
  },
  {
    id: 'query-client-secret-encoded-name',
    class: 'query-param',
    secret: 'qcs-corpus-9c4d',
    plant: { in: 'query', query: 'client%5Fsecret=qcs-corpus-9c4d' },
  },

  // JSON inside messages.
  {
    id: 'json-pass',
    class: 'json-in-message',
    secret: 'jpass-corpus-0d5e',
    plant: { in: 'message', text: 'bad payload {"user":"bob","pass":"jpass-corpus-0d5e"}' },
  },
  {
    id: 'json-private-key',
    class: 'json-in-message',
    secret: 'jpk-corpus-1e6f',
    plant: { in: 'message', text: 'config {"privateKey":"jpk-corpus-1e6f","kid":"k1"}' },
  },
  {
    id: 'json-access-key',
    class: 'json-in-message',
    secret: 'jak-corpus-2f7a',
    plant: { in: 'cause', text: 'body: {"accessKey": "jak-corpus-2f7a"}' },
  },
  {
    id: 'json-spaces',
    class: 'json-in-message',
    secret: 'correct horse battery corpus',
    plant: { in: 'message', text: '{"password": "correct horse battery corpus", "remember": true}' },
  },
  {
    id: 'json-escaped-quotes',
    class: 'json-in-message',
    secret: 'esc\\"aped-corpus-3a8b',
    plant: { in: 'message', text: '{"secret":"esc\\"aped-corpus-3a8b"}' },
  },
  {
    id: 'json-double-encoded',
    class: 'json-in-message',
    secret: 'dbl-json-corpus-4b9c',
    plant: { in: 'stack', text: 'at parse ("{\\"token\\":\\"dbl-json-corpus-4b9c\\"}")' },
  },
  {
    id: 'json-single-quoted',
    class: 'json-in-message',
    secret: 'inspect corpus 5c0d',
    plant: { in: 'message', text: "util.inspect { apiKey: 'inspect corpus 5c0d', retries: 2 }" },
  },
  {
    id: 'json-array',
    class: 'json-in-message',
    secret: 'arrtok-corpus-6d1e',
    plant: { in: 'aggregate', text: '{"tokens":["arrtok-corpus-6d1e","arrtok2-corpus-6d1f"]}' },
  },
  {
    id: 'json-nested-credentials',
    class: 'json-in-message',
    secret: 'nested-json-corpus-7e2f',
    plant: { in: 'message', text: '{"credentials":{"user":"svc","secret_value":"nested-json-corpus-7e2f"}}' },
  },

  // name=value / name: value text.
  {
    id: 'text-password-eq',
    class: 'name-value-text',
    secret: 'pweq-corpus-8f3a',
    plant: { in: 'message', text: 'login with password=pweq-corpus-8f3a failed' },
  },
  {
    id: 'text-passwd-colon',
    class: 'name-value-text',
    secret: 'passwdcol-corpus-9a4b',
    plant: { in: 'stack', text: 'at auth (passwd: passwdcol-corpus-9a4b)' },
  },
  {
    id: 'text-pwd',
    class: 'name-value-text',
    secret: 'pwd-corpus-0b5c',
    plant: { in: 'cause', text: 'sql: ALTER ROLE x PWD=pwd-corpus-0b5c' },
  },
  {
    id: 'text-session-token',
    class: 'name-value-text',
    secret: 'st-corpus-1c6d',
    plant: { in: 'message', text: 'sessionToken=st-corpus-1c6d rejected' },
  },
  {
    id: 'text-auth-token',
    class: 'name-value-text',
    secret: 'at-corpus-2d7e',
    plant: { in: 'message', text: 'retry with auth_token: at-corpus-2d7e' },
  },
  {
    id: 'text-signature',
    class: 'name-value-text',
    secret: 'sigval-corpus-3e8f',
    plant: { in: 'message', text: 'signature=sigval-corpus-3e8f does not match' },
  },
  {
    id: 'text-header-line',
    class: 'name-value-text',
    secret: 'hdr line corpus 4f9a',
    plant: { in: 'stack', text: 'X-Api-Key: hdr line corpus 4f9a' },
  },
  {
    id: 'text-private-key-eq',
    class: 'name-value-text',
    secret: 'pkeq-corpus-5a0b',
    plant: { in: 'message', text: 'spring.datasource.private_key=pkeq-corpus-5a0b' },
  },
  {
    id: 'text-credential',
    class: 'name-value-text',
    secret: 'cred-corpus-6b1c',
    plant: { in: 'aggregate', text: 'credential=cred-corpus-6b1c expired' },
  },
  {
    id: 'text-pg-detail',
    class: 'name-value-text',
    secret: 'pgdup-corpus-7c2d',
    plant: {
      in: 'property',
      value: { code: '23505', detail: 'Key (api_token)=(pgdup-corpus-7c2d) already exists.' },
    },
  },

  // Cookies.
  {
    id: 'cookie-first',
    class: 'cookie',
    secret: 'ck1-corpus-8d3e',
    plant: { in: 'header', name: 'Cookie', value: 'theme=ck1-corpus-8d3e' },
  },
  {
    id: 'cookie-second',
    class: 'cookie',
    secret: 'ck2-corpus-9e4f',
    plant: { in: 'header', name: 'Cookie', value: 'session=ck2-corpus-9e4f' },
  },
  {
    id: 'cookie-third',
    class: 'cookie',
    secret: 'ck3-corpus-0f5a',
    plant: { in: 'header', name: 'Cookie', value: 'csrftoken=ck3-corpus-0f5a' },
  },
  {
    id: 'set-cookie-header',
    class: 'cookie',
    secret: 'setckh-corpus-4d9e',
    plant: { in: 'header', name: 'X-Upstream-Set-Cookie', value: 'sid=setckh-corpus-4d9e; Path=/; Secure' },
  },
  {
    id: 'set-cookie-text',
    class: 'cookie',
    secret: 'setck-corpus-1a6b',
    plant: {
      in: 'message',
      text: 'upstream sent Set-Cookie: connect.sid=setck-corpus-1a6b; Path=/; HttpOnly',
    },
  },
  {
    id: 'cookie-text-pairs',
    class: 'cookie',
    secret: 'ckt-corpus-2b7c',
    plant: { in: 'stack', text: 'Cookie: a=1; _ga=ckt-corpus-2b7c; lang=en' },
  },
  {
    id: 'cookie-detail',
    class: 'cookie',
    secret: 'ckd-corpus-3c8d',
    plant: { in: 'detail', value: { headers: { cookie: 'x=ckd-corpus-3c8d' } } },
  },

  // PEM blocks.
  {
    id: 'pem-message',
    class: 'pem',
    secret: PEM_BODY_1,
    plant: { in: 'message', text: `bad key ${pem('PRIVATE KEY', PEM_BODY_1)} rejected` },
  },
  {
    id: 'pem-property',
    class: 'pem',
    secret: PEM_BODY_2,
    plant: { in: 'property', value: { material: pem('RSA PRIVATE KEY', PEM_BODY_2) } },
  },
  {
    id: 'pem-detail-escaped',
    class: 'pem',
    secret: PEM_BODY_3,
    plant: { in: 'detail', value: { blob: JSON.stringify({ k: pem('EC PRIVATE KEY', PEM_BODY_3) }) } },
  },
  {
    id: 'pem-unterminated',
    class: 'pem',
    secret: PEM_BODY_4,
    plant: { in: 'cause', text: `cut ${pem('OPENSSH PRIVATE KEY', PEM_BODY_4, false)}` },
  },

  // Well-known token formats.
  {
    id: 'github-ghp',
    class: 'token-format',
    secret: 'ghp_CorpusGh0pAbCdEfGhIjKlMnOpQrStUvWx12',
    plant: { in: 'message', text: 'git push failed using ghp_CorpusGh0pAbCdEfGhIjKlMnOpQrStUvWx12' },
  },
  {
    id: 'github-gho',
    class: 'token-format',
    secret: 'gho_CorpusGh0oAbCdEfGhIjKlMnOpQrStUvWx34',
    plant: { in: 'detail', value: { note: 'oauth gho_CorpusGh0oAbCdEfGhIjKlMnOpQrStUvWx34' } },
  },
  {
    id: 'github-pat',
    class: 'token-format',
    secret: 'github_pat_11CORPUS0A_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUV',
    plant: {
      in: 'stack',
      text: 'at clone (github_pat_11CORPUS0A_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUV)',
    },
  },
  {
    id: 'slack-bot',
    class: 'token-format',
    secret: 'xoxb-123456789012-1234567890123-CorpusSlackBotTokenAb',
    plant: {
      in: 'message',
      text: 'slack: invalid_auth for xoxb-123456789012-1234567890123-CorpusSlackBotTokenAb',
    },
  },
  {
    id: 'slack-user',
    class: 'token-format',
    secret: 'xoxp-223456789012-2234567890123-CorpusSlackUserTok',
    plant: { in: 'cause', text: 'token xoxp-223456789012-2234567890123-CorpusSlackUserTok revoked' },
  },
  {
    id: 'slack-webhook',
    class: 'token-format',
    secret: 'T00CORPUS/B00CORPUS/XXcorpusWebhookXXXXXXXX',
    plant: {
      in: 'message',
      text: 'POST https://hooks.slack.com/services/T00CORPUS/B00CORPUS/XXcorpusWebhookXXXXXXXX 404',
    },
  },
  {
    id: 'stripe-sk-live',
    class: 'token-format',
    secret: 'sk_live_51CorpusStripeSecretKey0123456789',
    plant: { in: 'message', text: 'stripe auth sk_live_51CorpusStripeSecretKey0123456789 invalid' },
  },
  {
    id: 'stripe-rk-live',
    class: 'token-format',
    secret: 'rk_live_51CorpusStripeRestricted987654',
    plant: { in: 'property', value: { requestOptions: 'rk_live_51CorpusStripeRestricted987654' } },
  },
  {
    id: 'stripe-whsec',
    class: 'token-format',
    secret: 'whsec_CorpusStripeWebhook0123456789abcd',
    plant: { in: 'aggregate', text: 'verify with whsec_CorpusStripeWebhook0123456789abcd failed' },
  },
  {
    id: 'google-aiza',
    class: 'token-format',
    secret: 'AIzaSyCorpusGoogleApiKey0123456789abcde',
    plant: { in: 'message', text: 'maps quota AIzaSyCorpusGoogleApiKey0123456789abcde exceeded' },
  },
  {
    id: 'google-ya29',
    class: 'token-format',
    secret: 'ya29.a0CorpusGoogleOauthAccessToken_0123',
    plant: { in: 'stack', text: 'at gapi (ya29.a0CorpusGoogleOauthAccessToken_0123)' },
  },
  {
    id: 'npm-token',
    class: 'token-format',
    secret: 'npm_CorpusNpmToken0123456789abcdefghijkl',
    plant: { in: 'message', text: 'npm publish with npm_CorpusNpmToken0123456789abcdefghijkl 403' },
  },
  {
    id: 'jwt',
    class: 'token-format',
    secret: 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjb3JwdXMifQ.Q29ycHVzSnd0U2lnbmF0dXJl',
    plant: {
      in: 'message',
      text: 'jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjb3JwdXMifQ.Q29ycHVzSnd0U2lnbmF0dXJl expired',
    },
  },
  {
    id: 'gitlab-pat',
    class: 'token-format',
    secret: 'glpat-CorpusGitlab0123456789',
    plant: { in: 'detail', value: { remote: 'glpat-CorpusGitlab0123456789' } },
  },
  {
    id: 'openai-key',
    class: 'token-format',
    secret: 'sk-proj-CorpusOpenAiKey0123456789abcdefXYZ',
    plant: { in: 'cause', text: 'openai 401: sk-proj-CorpusOpenAiKey0123456789abcdefXYZ' },
  },
  {
    id: 'sendgrid-key',
    class: 'token-format',
    secret: 'SG.CorpusSendgrid012345.CorpusSendgridSecretPart0123456789abcdefghi',
    plant: {
      in: 'message',
      text: 'sendgrid SG.CorpusSendgrid012345.CorpusSendgridSecretPart0123456789abcdefghi rejected',
    },
  },
  {
    id: 'high-entropy',
    class: 'token-format',
    secret: 'Zx81Kq0vB7nT4mW2pL9sR6yH3jF5dG1cQ8',
    plant: { in: 'message', text: 'webhook secret Zx81Kq0vB7nT4mW2pL9sR6yH3jF5dG1cQ8 mismatch' },
  },

  // Configured secrets, raw and encoded.
  {
    id: 'configured-db-password',
    class: 'configured',
    secret: CONFIGURED_SECRETS.databasePassword,
    configured: true,
    plant: { in: 'message', text: `role once used ${CONFIGURED_SECRETS.databasePassword} as seen` },
  },
  {
    id: 'configured-redis-url-encoded',
    class: 'configured',
    secret: CONFIGURED_SECRETS.redisPassword,
    configured: true,
    plant: {
      in: 'detail',
      value: {
        echo: `pw=${encodeURIComponent(CONFIGURED_SECRETS.redisPassword)}`,
        raw: `got ${CONFIGURED_SECRETS.redisPassword} back`,
      },
    },
  },
  {
    id: 'configured-admin-token-header',
    class: 'configured',
    secret: CONFIGURED_SECRETS.adminToken,
    configured: true,
    plant: { in: 'header', name: 'X-Forwarded-Note', value: `from ${CONFIGURED_SECRETS.adminToken}` },
  },
  {
    id: 'configured-tracking',
    class: 'configured',
    secret: CONFIGURED_SECRETS.trackingSecret,
    configured: true,
    plant: { in: 'property', value: { hint: CONFIGURED_SECRETS.trackingSecret } },
  },
  {
    id: 'configured-aws',
    class: 'configured',
    secret: CONFIGURED_SECRETS.awsSecret,
    configured: true,
    plant: { in: 'aggregate', text: `aws ${CONFIGURED_SECRETS.awsSecret}` },
  },
  {
    id: 'configured-spaces',
    class: 'configured',
    secret: CONFIGURED_SECRETS.spaced,
    configured: true,
    plant: { in: 'message', text: `note ${CONFIGURED_SECRETS.spaced} end` },
  },
  {
    id: 'configured-quoted',
    class: 'configured',
    secret: CONFIGURED_SECRETS.quoted,
    configured: true,
    plant: { in: 'detail', value: { echo: CONFIGURED_SECRETS.quoted } },
  },
  {
    id: 'configured-base64',
    class: 'configured',
    secret: CONFIGURED_SECRETS.b64,
    configured: true,
    plant: { in: 'message', text: `blob ${base64(CONFIGURED_SECRETS.b64)} stored` },
  },
  {
    id: 'configured-base64url',
    class: 'configured',
    secret: CONFIGURED_SECRETS.b64url,
    configured: true,
    plant: { in: 'stack', text: `at decode (${base64url(CONFIGURED_SECRETS.b64url)})` },
  },
  {
    id: 'configured-hex',
    class: 'configured',
    secret: CONFIGURED_SECRETS.hex,
    configured: true,
    plant: { in: 'cause', text: `bytes ${hex(CONFIGURED_SECRETS.hex)}` },
  },
  {
    id: 'configured-in-basic',
    class: 'configured',
    secret: CONFIGURED_SECRETS.basic,
    configured: true,
    plant: { in: 'detail', value: { upstream: `basic ${base64(`someone:${CONFIGURED_SECRETS.basic}`)}` } },
  },
  {
    id: 'configured-embedded-base64',
    class: 'configured',
    secret: CONFIGURED_SECRETS.embedded,
    configured: true,
    plant: { in: 'message', text: `payload ${base64(`{"v":1,"x":"${CONFIGURED_SECRETS.embedded}","y":2}`)}` },
  },
  {
    id: 'configured-double-encoded',
    class: 'configured',
    secret: CONFIGURED_SECRETS.doubleEncoded,
    configured: true,
    plant: {
      in: 'query',
      query: `next=${encodeURIComponent(encodeURIComponent(CONFIGURED_SECRETS.doubleEncoded))}`,
    },
  },
  {
    id: 'configured-percent',
    class: 'configured',
    secret: CONFIGURED_SECRETS.percent,
    configured: true,
    plant: { in: 'query', query: `q=${encodeURIComponent(CONFIGURED_SECRETS.percent)}` },
  },

  // Nested fields of worker/job details.
  {
    id: 'detail-db-password',
    class: 'nested-field',
    secret: 'ndp-corpus-4d9e',
    plant: { in: 'detail', value: { db: { host: 'db', password: 'ndp-corpus-4d9e' } } },
  },
  {
    id: 'detail-credentials',
    class: 'nested-field',
    secret: 'ncr-corpus-5e0f',
    plant: { in: 'detail', value: { credentials: { user: 'u', value: 'ncr-corpus-5e0f' } } },
  },
  {
    id: 'detail-auth-token-camel',
    class: 'nested-field',
    secret: 'nat-corpus-6f1a',
    plant: { in: 'detail', value: { message: { authToken: 'nat-corpus-6f1a', id: 'm-1' } } },
  },
  {
    id: 'detail-headers-authorization',
    class: 'nested-field',
    secret: 'nha-corpus-7a2b',
    plant: { in: 'detail', value: { request: { headers: { Authorization: 'nha-corpus-7a2b' } } } },
  },
  {
    id: 'detail-api-key-array',
    class: 'nested-field',
    secret: 'nak-corpus-8b3c',
    plant: { in: 'detail', value: { targets: [{ name: 't1', apiKey: 'nak-corpus-8b3c' }] } },
  },
  {
    id: 'detail-json-string',
    class: 'nested-field',
    secret: 'njs-corpus-9c4d',
    plant: { in: 'detail', value: { body: '{"refresh_token":"njs-corpus-9c4d"}' } },
  },
  {
    id: 'detail-session-cookie',
    class: 'nested-field',
    secret: 'nsc-corpus-0d5e',
    plant: { in: 'detail', value: { sessionCookie: 'nsc-corpus-0d5e' } },
  },

  // Own properties of thrown errors (pg, AWS SDK, HTTP clients).
  {
    id: 'aws-response-headers',
    class: 'error-property',
    secret: 'awsresp-corpus-1e6f',
    plant: {
      in: 'property',
      value: {
        $metadata: { httpStatusCode: 403, requestId: 'req-1' },
        $response: { statusCode: 403, headers: { 'x-amz-security-token': 'awsresp-corpus-1e6f' } },
      },
    },
  },
  {
    id: 'axios-config-headers',
    class: 'error-property',
    secret: 'axios-corpus-2f7a',
    plant: {
      in: 'property',
      value: { config: { url: '/v1', headers: { 'X-Partner-Key': 'axios-corpus-2f7a' } } },
    },
  },
  {
    id: 'response-data-token',
    class: 'error-property',
    secret: 'respdata-corpus-3a8b',
    plant: { in: 'property', value: { response: { data: { access_token: 'respdata-corpus-3a8b' } } } },
  },
  {
    id: 'property-text',
    class: 'error-property',
    secret: 'proptext-corpus-4b9c',
    plant: { in: 'property', value: { hint: 'retry with secret=proptext-corpus-4b9c' } },
  },

  // Cause chains and AggregateError.
  {
    id: 'cause-message',
    class: 'cause-chain',
    secret: 'causemsg-corpus-5c0d',
    plant: { in: 'cause', text: 'token=causemsg-corpus-5c0d rejected' },
  },
  {
    id: 'aggregate-message',
    class: 'cause-chain',
    secret: 'aggmsg-corpus-6d1e',
    plant: { in: 'aggregate', text: 'password: aggmsg-corpus-6d1e' },
  },

  // Non-Error thrown values.
  {
    id: 'thrown-string',
    class: 'non-error',
    secret: 'thrstr-corpus-7e2f',
    plant: { in: 'thrown', value: 'boom with api_key=thrstr-corpus-7e2f' },
  },
  {
    id: 'thrown-object',
    class: 'non-error',
    secret: 'throbj-corpus-8f3a',
    plant: { in: 'thrown', value: { status: 'failed', token: 'throbj-corpus-8f3a' } },
  },
  {
    id: 'thrown-object-long',
    class: 'non-error',
    secret: 'throblong-corpus-9a4b',
    plant: { in: 'thrown', value: { pad: 'x'.repeat(480), note: 'secret=throblong-corpus-9a4b' } },
  },
  {
    id: 'thrown-message-shape',
    class: 'non-error',
    secret: 'thrshape-corpus-0b5c',
    plant: { in: 'thrown', value: { name: 'GraphQLError', message: 'auth=thrshape-corpus-0b5c denied' } },
  },

  // Secrets at the truncation limits (message, stack, details).
  {
    id: 'truncated-message',
    class: 'truncation',
    secret: 'trunc-msg-corpus-1c6d-7e8f',
    plant: {
      in: 'message',
      text: `${FILLER.slice(0, 19_990)}password=trunc-msg-corpus-1c6d-7e8f ${FILLER.slice(0, 100)}`,
    },
  },
  {
    id: 'truncated-detail',
    class: 'truncation',
    secret: 'trunc-det-corpus-2d7e-8f9a',
    plant: { in: 'detail', value: { log: `${FILLER.slice(0, 19_995)}Bearer trunc-det-corpus-2d7e-8f9a` } },
  },
  {
    id: 'truncated-configured',
    class: 'truncation',
    secret: CONFIGURED_SECRETS.awsSecret.split('').reverse().join(''),
    configured: true,
    plant: {
      in: 'property',
      value: {
        dump: `${FILLER.slice(0, 19_985)}${CONFIGURED_SECRETS.awsSecret.split('').reverse().join('')}`,
      },
    },
  }, // URL-encoded text: decoded once and redacted again (review #12 M1).
  {
    id: 'encoded-name-value',
    class: 'query-param',
    secret: 'enc-tok-corpus-3a4b5c',
    plant: { in: 'message', text: 'callback state lost: token%3Denc-tok-corpus-3a4b5c' },
  },
  {
    id: 'encoded-nested-url',
    class: 'query-param',
    secret: 'nested-corpus-5c6d7e8f',
    plant: {
      in: 'query',
      query: 'next=https%3A%2F%2Fidp.example%2Fcb%3Faccess_token%3Dnested-corpus-5c6d7e8f',
    },
  },
  {
    id: 'encoded-authorization',
    class: 'auth-scheme',
    secret: 'encauth-corpus-8f9a0b1c',
    plant: { in: 'message', text: 'forwarded header authorization%3A%20Bearer%20encauth-corpus-8f9a0b1c' },
  },
  {
    id: 'encoded-json-password',
    class: 'json-in-message',
    secret: 'encjson-corpus-2d3e4f5a',
    plant: { in: 'stack', text: 'body=%7B%22password%22%3A%22encjson-corpus-2d3e4f5a%22%7D' },
  }, // Names and path tokens (review #12 L3, L7).
  {
    id: 'passkey-name',
    class: 'name-value-text',
    secret: 'passkey-corpus-6b7c8d9e',
    plant: { in: 'message', text: 'enrolment failed passkey=passkey-corpus-6b7c8d9e' },
  },
  {
    id: 'pin-detail',
    class: 'nested-field',
    secret: 'pin-corpus-0f1a2b3c',
    plant: { in: 'detail', value: { card: { pin: 'pin-corpus-0f1a2b3c', last4: '4242' } } },
  },
  {
    id: 'hmac-header',
    class: 'header-name',
    secret: 'hmac-corpus-4d5e6f7a',
    plant: { in: 'header', name: 'X-Hmac', value: 'hmac-corpus-4d5e6f7a' },
  },
  {
    id: 'path-segment-token',
    class: 'token-format',
    secret: 'AAHdqTcvCH1vGWJxfSeofSAs0K5PALDcrp',
    plant: {
      in: 'message',
      text: 'POST https://api.telegram.org/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDcrp/sendMessage failed',
    },
  },
];

/** Harmless text that looks like secrets and must survive redaction (over-redaction check). */
export const REDACTION_LOOKALIKES: readonly string[] = [
  'keyboard=qwertz',
  'monkey=george',
  'the bearer of bad news',
  'Token expired',
  'user 42 has 3 tokens left at https://once.example/u?page=2',
  'digest fan-out failed for basic users',
  'Basic plan',
  'sessionCount=3',
  'tokenType=refresh',
  'Idempotency-Key: digest-2026-11-22',
  'REDIS_KEY_PREFIX=once:',
  'compass=north',
  'bypass=true',
  'author=alice',
  'authority=ca',
  'secretary=bob',
  'tokenizer=whitespace',
  'primaryKey: id',
  'commit 3f786850e387550fdab836ed7e6dc881de23001b',
  'id 9f1c2d3e-4b5a-6c7d-8e9f-0a1b2c3d4e5f',
  'ECONNREFUSED 127.0.0.1:6379',
  'postgres://db.internal:5432/once',
  'https://once.example/daily/2026-11-22?lang=en&page=2',
  'at AuthService.validateToken (/app/src/auth/token.service.js:42:13)',
  'at Object.<anonymous> (/app/node_modules/@nestjs/core/router/router-explorer.js:309:28)',
  'x-request-id: 5f0c1a2b',
  'Accept: application/json',
  'content-length: 42',
  'X-Amz-Date=20261122T100000Z',
  'error code: ECONNRESET',
  'signatureVersion=v4',
  'duplicate key value violates unique constraint "users_email_key"',
  'passwordLength=12',
  'FANOUT_PAGE_SIZE_MUST_BE_POSITIVE_2026',
  'relation "digest_sessions" does not exist',
  'Error: Cannot find module ./session.store',
  'Timeout after 30 s: connection reset',
  'Basic Authentication required',
  'Token Verification failed',
  'pinned=true',
];

/** Values of the `configured` items: what a redactor's `secrets` option receives. */
export function configuredSecrets(items: readonly RedactionCorpusItem[] = REDACTION_CORPUS): string[] {
  return items.filter((item) => item.configured).map((item) => item.secret);
}

/** The forms a leak could take in a mail: raw, URL-encoded (once, twice), base64, base64url, hex, JSON-escaped. */
export function secretForms(secret: string): string[] {
  const forms = new Set([
    secret,
    encodeURIComponent(secret),
    encodeURIComponent(encodeURIComponent(secret)),
    JSON.stringify(secret).slice(1, -1),
  ]);
  if (secret.length >= 6) {
    forms.add(base64(secret).replace(/=+$/, ''));
    forms.add(base64url(secret));
    forms.add(hex(secret));
  }
  return [...forms];
}

/** Ids of the items whose secret appears in `output` in any of its {@link secretForms}. */
export function leakedItems(
  output: string,
  items: readonly RedactionCorpusItem[] = REDACTION_CORPUS,
): string[] {
  return items
    .filter((item) => secretForms(item.secret).some((form) => output.includes(form)))
    .map((item) => item.id);
}

/** Names (keys of `secrets`) whose value appears in `output` in any of its {@link secretForms}. */
export function leakedSecretNames(output: string, secrets: Readonly<Record<string, string>>): string[] {
  return Object.entries(secrets)
    .filter(([, value]) => secretForms(value).some((form) => output.includes(form)))
    .map(([name]) => name);
}

/** The lines holding a named secret or a corpus item, each with what it holds (the line cut to 300 characters). */
export function leakedLines(
  lines: readonly string[],
  secrets: Readonly<Record<string, string>>,
  items: readonly RedactionCorpusItem[] = REDACTION_CORPUS,
): Array<{ found: string[]; line: string }> {
  return lines.flatMap((line) => {
    const found = [...leakedSecretNames(line, secrets), ...leakedItems(line, items)];
    return found.length ? [{ found, line: line.slice(0, 300) }] : [];
  });
}

/** `url` with `password` (URL-encoded) as its password, and `username` when it has none. */
export function withUrlPassword(url: string, password: string, username = 'ops'): string {
  const parsed = new URL(url);
  parsed.username ||= username;
  parsed.password = encodeURIComponent(password);
  return parsed.toString();
}

function setEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (the e2e global setup sets it)`);
  return value;
}

/** Secret values to plant in an app's real config, by the place they go (see {@link secretBearingEnv}). */
export interface PlantedEnvSecrets {
  AWS_SECRET_ACCESS_KEY: string;
  'DATABASE_URL password': string;
  'REDIS_URL password': string;
  'SQS_ENDPOINT password': string;
  'SES_ENDPOINT password': string;
}

/**
 * The env variables that carry `secrets` for an app booted against the local services: the AWS
 * key, and passwords in `DATABASE_URL` (trust auth accepts any), `REDIS_URL` (`redisUrl`: a Redis
 * of the test's own with that password set) and the emulator endpoints.
 */
export function secretBearingEnv(secrets: PlantedEnvSecrets, redisUrl: string): Record<string, string> {
  return {
    AWS_SECRET_ACCESS_KEY: secrets.AWS_SECRET_ACCESS_KEY,
    DATABASE_URL: withUrlPassword(setEnv('DATABASE_URL'), secrets['DATABASE_URL password'], 'postgres'),
    REDIS_URL: withUrlPassword(redisUrl, secrets['REDIS_URL password'], ''),
    SQS_ENDPOINT: withUrlPassword(setEnv('SQS_ENDPOINT'), secrets['SQS_ENDPOINT password']),
    SES_ENDPOINT: withUrlPassword(setEnv('SES_ENDPOINT'), secrets['SES_ENDPOINT password']),
  };
}

/** A thrown error, request and details carrying the given items, as the HTTP, worker and job sources would see them. */
export interface PlantedScenario {
  /** The main error (message, stack lines, properties, cause chain with an AggregateError). */
  error: Error;
  /** Non-Error values thrown on their own, one per `thrown` item. */
  thrown: unknown[];
  /** Request URL (path + query) and headers carrying the `query` and `header` items. */
  request: { url: string; headers: Record<string, string> };
  /** Worker/job context fields carrying the `detail` items. */
  details: Record<string, unknown>;
}

/** Packs items into one scenario (one error, one request, one details object) so few mails carry many secrets. */
export function plantScenario(items: readonly RedactionCorpusItem[], label = 'corpus'): PlantedScenario {
  const texts = (kind: RedactionPlant['in']) =>
    items.flatMap((item) => (item.plant.in === kind && 'text' in item.plant ? [item.plant.text] : []));
  const causeTexts = texts('cause');
  const aggregateTexts = texts('aggregate');
  const inner = aggregateTexts.length
    ? new AggregateError(
        aggregateTexts.map((text) => new Error(text)),
        `${label}: several sends failed`,
      )
    : undefined;
  const cause = causeTexts.length
    ? new Error(causeTexts.join(' | '), { cause: inner ?? new Error(`${label}: root cause`) })
    : inner;
  const error = new Error(
    [`${label} failed`, ...texts('message')].join(' | '),
    cause ? { cause } : undefined,
  );
  const [head, ...frames] = (error.stack ?? '').split('\n');
  error.stack = [head, ...texts('stack').map((line) => `    ${line}`), ...frames].join('\n');
  const headers: Record<string, string> = {};
  const details: Record<string, unknown> = { job: label };
  const query: string[] = [`corpus=${encodeURIComponent(label)}`];
  const thrown: unknown[] = [];
  items.forEach((item, index) => {
    const plant = item.plant;
    if (plant.in === 'property') Object.assign(error, plant.value);
    else if (plant.in === 'header') {
      const name = plant.name.toLowerCase();
      // Several cookie items share one Cookie header, as a browser sends them.
      headers[name] = headers[name] && name === 'cookie' ? `${headers[name]}; ${plant.value}` : plant.value;
    } else if (plant.in === 'query') query.push(plant.query);
    else if (plant.in === 'detail') details[`item${index}`] = plant.value;
    else if (plant.in === 'thrown') thrown.push(plant.value);
  });
  return { error, thrown, request: { url: `/corpus/${label}?${query.join('&')}`, headers }, details };
}
