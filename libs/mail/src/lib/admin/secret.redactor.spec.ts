import { isSecretName, REDACTED, SecretRedactor } from './secret.redactor';

describe('SecretRedactor', () => {
  const planted = {
    bearer: 'eyJhbGciOiJIUzI1NiJ9.payload.sig-value',
    basic: 'dXNlcjpodW50ZXIy',
    cookie: 'session=abc123def456; theme=dark',
    apiKey: 'k3y-live-9f8e7d6c5b4a',
    amzToken: 'IQoJb3JpZ2luX2VjEFAaCXVzLWVhc3QtMSJH',
    akia: 'AKIAIOSFODNN7EXAMPLE',
    asia: 'ASIAJEXAMPLEXEG2JICEA',
    urlPassword: 'pa55w0rd-in-url',
    signature: 'c2lnbmVkLWxpbmstc2lnbmF0dXJl',
    sig: 'deadbeefcafebabe',
    amzSignature: 'fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024',
    configured: 'sup3r-s3cret-db-pass',
    password: 'hunter2-hunter2',
    customField: 'internal-only-value',
  };
  const redactor = new SecretRedactor({
    secrets: [planted.configured],
    keys: ['x-internal-field'],
    patterns: [/ticket-\d{6}/],
  });

  const everySecret = (text: string) => Object.values(planted).filter((secret) => text.includes(secret));

  it('hides sensitive headers by name, whatever their case, and keeps the rest', () => {
    const headers = redactor.redact({
      Authorization: `Bearer ${planted.bearer}`,
      cookie: planted.cookie,
      'X-Api-Key': planted.apiKey,
      'x-amz-security-token': planted.amzToken,
      'X-Internal-Field': planted.customField,
      'user-agent': 'curl/8.5.0',
      accept: 'application/json',
    }) as Record<string, string>;

    expect(headers).toEqual({
      Authorization: REDACTED,
      cookie: REDACTED,
      'X-Api-Key': REDACTED,
      'x-amz-security-token': REDACTED,
      'X-Internal-Field': REDACTED,
      'user-agent': 'curl/8.5.0',
      accept: 'application/json',
    });
  });

  it('hides secrets inside free text, URLs and stack traces', () => {
    const text = [
      `GET /unsubscribe?u=42&s=${planted.signature}&sig=${planted.sig}&lang=en`,
      `https://bucket.s3.amazonaws.com/file?X-Amz-Credential=${planted.akia}%2F20261122&X-Amz-Signature=${planted.amzSignature}`,
      `connect postgres://once:${planted.urlPassword}@db.internal:5432/once failed`,
      `Authorization: Basic ${planted.basic}`,
      `token ${planted.bearer} and Bearer ${planted.bearer}`,
      `assumed role with ${planted.asia} and key ${planted.akia}`,
      `password=${planted.password} {"api_key":"${planted.apiKey}"}`,
      `db pass is ${planted.configured}`,
      'see ticket-123456',
    ].join('\n');

    const redacted = redactor.redactString(text);

    expect(everySecret(redacted)).toEqual([]);
    expect(redacted).not.toContain('ticket-123456');
    expect(redacted).toContain('u=42');
    expect(redacted).toContain('lang=en');
    expect(redacted).toContain('postgres://[REDACTED]@db.internal:5432/once');
    expect(redacted).toContain(`s=${REDACTED}`);
  });

  it('leaves ordinary text alone', () => {
    for (const text of [
      'abc is fine',
      'digest fan-out failed for basic users',
      'the bearer of bad news',
      'user 42 has 3 tokens left at https://once.example/u?page=2',
    ]) {
      expect(redactor.redactString(text)).toBe(text);
    }
  });

  it('walks nested objects, arrays and errors, and survives cycles', () => {
    const error = new Error(`login failed for key ${planted.akia}`);
    const details: Record<string, unknown> = {
      job: 'daily-digest',
      nested: { credentials: { user: 'u', pass: planted.password }, list: [`Bearer ${planted.bearer}`] },
      error,
    };
    details['self'] = details;

    const redacted = redactor.redact(details) as Record<string, unknown>;
    const json = JSON.stringify(redacted);

    expect(everySecret(json)).toEqual([]);
    expect(redacted['job']).toBe('daily-digest');
    expect((redacted['nested'] as Record<string, unknown>)['credentials']).toBe(REDACTED);
    expect(redacted['self']).toBe('[circular]');
    expect((redacted['error'] as Record<string, string>)['message']).toBe(`login failed for key ${REDACTED}`);
  });

  it('decides by name segments (split on -, _, . and camelCase), not by substrings', () => {
    const secret = [
      'X-Auth',
      'x-apikey',
      'x-session-id',
      'x-goog-api-key',
      'privateKey',
      'accessKey',
      'client_secret',
      'XCSRFToken',
      'PHPSESSID',
      'connect.sid',
      'X-Hub-Signature-256',
      'db.pass',
      'Set-Cookie',
      'x-functions-key',
    ];
    const plain = [
      'keyboard',
      'monkey',
      'tokenizer',
      'secretary',
      'author',
      'authority',
      'compass',
      'bypass',
      'passport',
      'tokenType',
      'passwordLength',
      'sessionCount',
      'Idempotency-Key',
      'REDIS_KEY_PREFIX',
      'primaryKey',
      'x-amz-date',
      'signatureVersion',
      'user-agent',
      'code',
    ];
    expect(secret.filter((name) => !isSecretName(name))).toEqual([]);
    expect(plain.filter((name) => isSecretName(name))).toEqual([]);
  });

  it('replaces only the value: the rest of a message stays readable', () => {
    expect(redactor.redactString('token expired for user 42; token=abc123def retry later')).toBe(
      `token expired for user 42; token=${REDACTED} retry later`,
    );
    expect(redactor.redactString('Cookie: a=1; session=s3ss10n; csrftoken=c5rf | next')).toBe(
      `Cookie: ${REDACTED}`,
    );
    expect(redactor.redactString('sent Cookie: a=1; session=s3ss10n | next')).toBe(
      `sent Cookie: ${REDACTED} | next`,
    );
  });

  it('hides query parameters only meaningful in URLs (code) without hiding error codes', () => {
    expect(redactor.redactString('/oauth/callback?code=4/0Ab12&state=xyz')).toBe(
      `/oauth/callback?code=${REDACTED}&state=xyz`,
    );
    expect(redactor.redact({ code: 'ECONNRESET' })).toEqual({ code: 'ECONNRESET' });
  });

  it('redacts before it cuts, and cuts at maxStringLength', () => {
    const cut = new SecretRedactor({ maxStringLength: 100 });
    const text = `${'x'.repeat(95)} password=abcdefgh12345678`;
    expect(cut.redactString(text)).toBe(`${'x'.repeat(95)} pass…[truncated]`);
    expect(cut.redactString(text, Infinity)).toBe(`${'x'.repeat(95)} password=${REDACTED}`);
  });

  it('walks error own properties, causes and aggregated errors, and hides function sources', () => {
    const error = Object.assign(
      new Error('outer', { cause: new AggregateError([new Error('token=inner12345')], 'agg') }),
      {
        detail: 'Key (api_key)=(dup-key-123) already exists.',
        retry: () => 'source with password=fn-secret-1',
      },
    );
    const json = JSON.stringify(redactor.redact(error));
    expect(json).not.toMatch(/inner12345|dup-key-123|fn-secret-1/);
    expect(json).toContain('"retry":"[function]"');
    expect(json).toContain('Key (api_key)=([REDACTED]) already exists.');
  });

  describe('options', () => {
    it.each([
      [{ secrets: ['short'] }, 'secrets[0] is 5 characters, shorter than minSecretLength (8)'],
      [{ secrets: ['long enough', 42] }, 'secrets[1] must be strings'],
      [{ secret: ['typo-of-secrets'] }, 'secret is not an option'],
      [{ keys: 'authorization' }, 'keys must be an array'],
      [{ patterns: [/x*/] }, 'patterns[0] matches the empty string'],
      [{ minSecretLength: 0 }, 'minSecretLength must be an integer of at least 1'],
      [{ maxStringLength: 10.5 }, 'maxStringLength must be an integer of at least 100'],
    ])('refuses %j naming the option', (options, message) => {
      expect(() => new SecretRedactor(options as never)).toThrow(message);
      expect(() => new SecretRedactor(options as never)).toThrow('adminErrors.redact');
    });

    it('never puts a refused secret in its error message', () => {
      expect(() => new SecretRedactor({ secrets: ['hunter2'] })).toThrow(/^(?!.*hunter2)/s);
    });

    it('accepts shorter secrets when minSecretLength allows them', () => {
      expect(
        new SecretRedactor({ secrets: ['hunter2'], minSecretLength: 6 }).redactString('pw hunter2'),
      ).toBe(`pw ${REDACTED}`);
    });
  });

  describe('URL-encoded text (decoded once, redacted, encoded back)', () => {
    const plain = new SecretRedactor();
    it.each([
      ['token%3Dabc123', 'token%3D[REDACTED]'],
      [
        'GET /cb?next=https%3A%2F%2Fx%2F%3Faccess_token%3Dabc123 failed',
        'GET /cb?next=https://x/?access_token=[REDACTED] failed',
      ],
      ['authorization%3A%20Bearer%20abc123def456', 'authorization%3A%20[REDACTED]'],
      ['a=b%26password%3Dhunter2%26c%3Dd', 'a=b&password=[REDACTED]&c=d'],
      ['x=%7B%22password%22%3A%22hunter2%22%7D', 'x=%7B%22password%22%3A%22[REDACTED]%22%7D'],
      ['q=Bearer%20abc123def456', 'q=Bearer%20[REDACTED]'],
    ])('%s', (input, expected) => {
      expect(plain.redactString(input)).toBe(expected);
    });

    it('keeps encoded text without secrets as it was', () => {
      for (const text of ['/search?q=caf%C3%A9%20au%20lait', 'name=a%2Fb%20c', '100%25 done', '%E0%A4%A']) {
        expect(plain.redactString(text)).toBe(text);
      }
    });
  });

  describe('review #12 L1/L3/L7', () => {
    const formSecret = 'abc~def!ghi(jkl)*';
    const configured = new SecretRedactor({ secrets: [formSecret, 'correct horse battery'] });

    it('hides configured secrets in form encoding (URLSearchParams) and escape() style', () => {
      for (const secret of [formSecret, 'correct horse battery']) {
        const form = new URLSearchParams({ x: secret }).toString().slice(2);
        const escaped = [...secret]
          .map((char) =>
            /[A-Za-z0-9@*_+\-./]/.test(char)
              ? char
              : `%${char.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`,
          )
          .join('');
        for (const encoded of [
          form,
          escaped,
          form.toLowerCase() === form ? form : form.replace(/%[0-9A-F]{2}/g, (hex) => hex.toLowerCase()),
        ]) {
          expect(configured.redactString(`sent u=${encoded} to the upstream`)).toBe(
            `sent u=${REDACTED} to the upstream`,
          );
        }
      }
    });

    it.each(['passkey', 'pin', 'userPin', 'card_cvv', 'cvc', 'salt', 'nonce', 'hmac', 'x-hmac'])(
      'treats %s as a secret name',
      (name) => {
        expect(isSecretName(name)).toBe(true);
        expect(redactor.redactString(`${name}=v4lue-x1`)).toBe(`${name}=${REDACTED}`);
      },
    );

    it.each(['pinned', 'spin', 'ping', 'pinLength', 'saltRounds', 'shipping'])('keeps %s', (name) => {
      expect(isSecretName(name)).toBe(false);
    });

    it.each([
      'Timeout after 30 s: connection reset',
      'Basic Authentication required',
      'Token Verification failed',
      'Basic Auth is disabled',
    ])('keeps prose: %s', (text) => {
      expect(redactor.redactString(text)).toBe(text);
    });

    it('still hides s and sig in query strings, headers and object keys, and short bearer tokens', () => {
      expect(redactor.redactString('GET /d?s=abc123&sig=def456')).toBe(
        `GET /d?s=${REDACTED}&sig=${REDACTED}`,
      );
      expect(redactor.redact({ s: 'abc', sig: 'def' })).toEqual({ s: REDACTED, sig: REDACTED });
      expect(redactor.redactString('Bearer xyz')).toBe(`Bearer ${REDACTED}`);
      expect(redactor.redactString('Token 9f8e7d6c5b')).toBe(`Token ${REDACTED}`);
      expect(redactor.redactString('Basic dXNlcjpwYXNz')).toBe(`Basic ${REDACTED}`);
    });

    it('hides a random token that is a path segment', () => {
      expect(
        redactor.redactString(
          'POST https://api.telegram.org/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/sendMessage failed',
        ),
      ).toBe(`POST https://api.telegram.org/bot123456789:${REDACTED}/sendMessage failed`);
    });

    it('renders Map and Set contents, redacted', () => {
      const out = redactor.redact({
        map: new Map<unknown, unknown>([
          ['password', 'mappw12345'],
          ['region', 'eu-west-1'],
        ]),
        set: new Set(['Bearer setsecret123', 'plain']),
      });
      expect(out).toEqual({
        map: { password: REDACTED, region: 'eu-west-1' },
        set: [`Bearer ${REDACTED}`, 'plain'],
      });
    });
  });
});
