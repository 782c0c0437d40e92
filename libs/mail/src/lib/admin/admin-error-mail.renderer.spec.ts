import { resolveMailOptions } from '../mail.options';
import { renderAdminErrorMail } from './admin-error-mail.renderer';
import { SecretRedactor } from './secret.redactor';

describe('renderAdminErrorMail', () => {
  const admin = resolveMailOptions({
    ses: { region: 'us-east-1' },
    redis: { eval: () => undefined } as never,
    defaultFrom: 'once@example.com',
    adminErrors: {
      recipients: ['ops@example.com'],
      appName: 'api',
      appVersion: '1.2.3',
      environment: 'production',
    },
  }).adminErrors!;
  const redactor = new SecretRedactor({ secrets: ['db-pass-123456'] });

  it('includes method, path, user agent, stack, app name and version, all redacted', () => {
    const error = new Error('connect failed with db-pass-123456');
    const { subject, text } = renderAdminErrorMail(
      {
        error,
        context: {
          source: 'http',
          request: {
            method: 'POST',
            url: '/digests/42?s=signature-value&page=2',
            route: '/digests/:id',
            headers: {
              'user-agent': 'Mozilla/5.0 (X11)',
              authorization: 'Bearer abcdefghijkl',
              'x-amz-date': '20261122T100000Z',
            },
            requestId: 'req-7',
          },
          details: { queue: 'once-jobs' },
        },
        fingerprint: 'abcdef0123456789',
        occurredAt: new Date('2026-11-22T10:00:00.000Z'),
        moreOccurrences: 0,
      },
      admin,
      redactor,
    );

    expect(subject).toBe('[Once] api http: Error: connect failed with [REDACTED]');
    for (const expected of [
      'Method:     POST',
      'Path:       /digests/42?s=[REDACTED]&page=2',
      'Route:      /digests/:id',
      'User agent: Mozilla/5.0 (X11)',
      'App:         api',
      'Version:     1.2.3',
      'Environment: production',
      'Fingerprint: abcdef0123456789',
      'authorization: [REDACTED]',
      'x-amz-date: 20261122T100000Z',
      '"queue": "once-jobs"',
      'at ',
    ]) {
      expect(text).toContain(expected);
    }
    expect(text).not.toContain('db-pass-123456');
    expect(text).not.toContain('signature-value');
    expect(text).not.toContain('abcdefghijkl');
    expect(text).not.toContain('more occurrence');
  });

  const render = (error: unknown, context = {}) =>
    renderAdminErrorMail(
      {
        error,
        context,
        fingerprint: 'abcdef0123456789',
        occurredAt: new Date('2026-11-22T10:00:00.000Z'),
        moreOccurrences: 0,
      },
      admin,
      redactor,
    );

  it('shows the error own properties, its cause chain and aggregated errors, redacted', () => {
    const root = new AggregateError(
      [new Error('send 1: password=agg-pw-1234'), new Error('send 2 refused')],
      'fan-out failed',
    );
    const error = Object.assign(
      new Error('digest failed', { cause: new Error('query failed', { cause: root }) }),
      {
        code: '23505',
        detail: 'Key (session_token)=(dup-tok-5678) already exists.',
        $metadata: { httpStatusCode: 403 },
      },
    );
    const { text } = render(error);
    for (const expected of [
      'Properties:',
      '"code": "23505"',
      '"httpStatusCode": 403',
      'Key (session_token)=([REDACTED]) already exists.',
      'Caused by',
      'Error: query failed',
      'AggregateError: fan-out failed',
      'Aggregated error 1 of 2',
      'send 1: password=[REDACTED]',
      'Aggregated error 2 of 2',
      'send 2 refused',
    ]) {
      expect(text).toContain(expected);
    }
    expect(text).not.toMatch(/agg-pw-1234|dup-tok-5678/);
  });

  it('survives a cause cycle', () => {
    const a = new Error('a');
    const b = new Error('b', { cause: a });
    (a as { cause?: unknown }).cause = b;
    expect(render(a).text).toContain('Error: b');
  });

  it('renders non-Error thrown values whole, redacted before they are cut', () => {
    const thrown = { pad: 'p'.repeat(600), token: 'thrown-token-123', status: 'failed' };
    const { subject, text } = render(thrown);
    expect(text).toContain('"status":"failed"');
    expect(text).toContain('"token":"[REDACTED]"');
    expect(`${subject}${text}`).not.toContain('thrown-token-123');
    expect(render('boom with api_key=str-secret-123').text).toContain(
      'NonError: boom with api_key=[REDACTED]',
    );
  });

  it('redacts the subject before cutting it', () => {
    const { subject } = render(new Error(`${'x'.repeat(130)} password=subject-secret-123456789`));
    expect(subject.length).toBeLessThanOrEqual(180);
    expect(subject).not.toMatch(/subject-s|secret-123/);
  });
});
