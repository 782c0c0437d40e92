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
      'x-amz-date: [REDACTED]',
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
});
