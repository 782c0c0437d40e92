import { connect, createServer } from 'node:net';
import {
  AccountSuspendedException,
  BadRequestException,
  InternalServiceErrorException,
  LimitExceededException,
  MailFromDomainNotVerifiedException,
  MessageRejected,
  NotFoundException,
  SESv2Client,
  SendEmailCommand,
  SendingPausedException,
  TooManyRequestsException,
} from '@aws-sdk/client-sesv2';
import {
  type SesErrorKind,
  classifySesError,
  describeSesError,
  isRetryableSesErrorKind,
} from './ses-error.classifier';

const meta = (httpStatusCode: number) => ({ $metadata: { httpStatusCode } });

/** A Node system error shaped like the ones `net`/`dns` raise (and the SDK passes through). */
const systemError = (message: string, fields: { code: string; syscall?: string }) =>
  Object.assign(new Error(message), { errno: -1, ...fields, $metadata: { attempts: 1, totalRetryDelay: 0 } });

const named = (name: string, message: string, extra: object = {}) =>
  Object.assign(new Error(message), { name, ...extra });

const sendEmail = () =>
  new SendEmailCommand({
    FromEmailAddress: 'from@example.com',
    Destination: { ToAddresses: ['to@example.com'] },
    Content: { Simple: { Subject: { Data: 'S' }, Body: { Text: { Data: 'T' } } } },
  });

const fakeCredentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' };

/** What a real SESv2Client throws for this configuration (it must throw). */
async function sdkError(config: ConstructorParameters<typeof SESv2Client>[0]): Promise<unknown> {
  const client = new SESv2Client({
    region: 'us-east-1',
    credentials: fakeCredentials,
    maxAttempts: 1,
    requestHandler: { requestTimeout: 5_000, connectionTimeout: 2_000 },
    ...config,
  });
  try {
    await client.send(sendEmail());
  } catch (error) {
    return error;
  } finally {
    client.destroy();
  }
  throw new Error('expected SESv2Client.send to fail');
}

/** A local port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('classifySesError', () => {
  it('treats throttling as throttled', () => {
    expect(classifySesError(new TooManyRequestsException({ message: 'slow down', ...meta(429) }))).toBe(
      'throttled',
    );
    expect(classifySesError(new LimitExceededException({ message: 'limit', ...meta(400) }))).toBe(
      'throttled',
    );
    expect(
      classifySesError(
        Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException', ...meta(400) }),
      ),
    ).toBe('throttled');
  });

  describe('failures before the request could reach SES → unreachable', () => {
    it('a refused connection, as Node reports it', async () => {
      // The SDK passes this error through as is (only adding `$metadata.attempts`). Under Jest it
      // would wrap it, because Node's errors come from another realm than the test's `Error`, so
      // the real socket error is taken from `net` directly.
      const port = await closedPort();
      const error = await new Promise<unknown>((resolve) =>
        connect({ host: '127.0.0.1', port }).on('error', resolve),
      );
      expect(error).toMatchObject({ code: 'ECONNREFUSED', syscall: 'connect' });
      expect(classifySesError(error)).toBe('unreachable');
      expect(classifySesError(Object.assign(error as object, { $metadata: { attempts: 1 } }))).toBe(
        'unreachable',
      );
    });

    it('an invalid endpoint, as the real SDK reports it', async () => {
      const error = await sdkError({ endpoint: 'not a url' });
      expect(error).toMatchObject({ code: 'ERR_INVALID_URL' });
      expect(classifySesError(error)).toBe('unreachable');
    });

    it('a credentials provider that fails, as the real SDK passes it through', async () => {
      const error = await sdkError({
        endpoint: `http://127.0.0.1:${await closedPort()}`,
        credentials: async () => {
          throw named('CredentialsProviderError', 'Could not load credentials from any providers', {
            tryNextLink: false,
          });
        },
      });
      expect(error).toMatchObject({ name: 'CredentialsProviderError' });
      expect(classifySesError(error)).toBe('unreachable');
      expect(classifySesError(named('TokenProviderError', 'no token'))).toBe('unreachable');
      expect(classifySesError(named('EndpointError', 'Invalid Configuration: Missing Region'))).toBe(
        'unreachable',
      );
    });

    it('DNS failures', () => {
      const notFound = systemError('getaddrinfo ENOTFOUND email.us-east-1.amazonaws.com', {
        code: 'ENOTFOUND',
        syscall: 'getaddrinfo',
      });
      const tryAgain = systemError('getaddrinfo EAI_AGAIN email.us-east-1.amazonaws.com', {
        code: 'EAI_AGAIN',
        syscall: 'getaddrinfo',
      });
      expect(classifySesError(notFound)).toBe('unreachable');
      expect(classifySesError(tryAgain)).toBe('unreachable');
      expect(classifySesError(new TypeError('fetch failed', { cause: notFound }))).toBe('unreachable');
    });

    it('unreachable hosts and networks only when raised by connect', () => {
      expect(
        classifySesError(
          systemError('connect EHOSTUNREACH 10.0.0.1:443', { code: 'EHOSTUNREACH', syscall: 'connect' }),
        ),
      ).toBe('unreachable');
      expect(
        classifySesError(systemError('read EHOSTUNREACH', { code: 'EHOSTUNREACH', syscall: 'read' })),
      ).toBe('ambiguous');
      expect(classifySesError(systemError('EHOSTUNREACH', { code: 'EHOSTUNREACH' }))).toBe('ambiguous');
    });

    it('a happy-eyeballs AggregateError only when every address failed to connect', () => {
      const refused4 = systemError('connect ECONNREFUSED 127.0.0.1:443', {
        code: 'ECONNREFUSED',
        syscall: 'connect',
      });
      const unreachable6 = systemError('connect ENETUNREACH ::1:443', {
        code: 'ENETUNREACH',
        syscall: 'connect',
      });
      const timedOut6 = systemError('connect ETIMEDOUT ::1:443', { code: 'ETIMEDOUT', syscall: 'connect' });
      const aggregate = (errors: Error[]) =>
        Object.assign(new AggregateError(errors, ''), { code: (errors[0] as { code?: string }).code });
      expect(classifySesError(aggregate([refused4, unreachable6]))).toBe('unreachable');
      expect(classifySesError(aggregate([refused4, timedOut6]))).toBe('ambiguous');
    });
  });

  describe('refusals about the account or its configuration → account', () => {
    it.each([
      [
        'AccessDeniedException',
        named('AccessDeniedException', 'not authorized to perform ses:SendEmail', meta(403)),
      ],
      ['UnrecognizedClientException', named('UnrecognizedClientException', 'invalid token', meta(400))],
      ['ExpiredTokenException', named('ExpiredTokenException', 'token expired', meta(400))],
      ['any 403', named('UnknownError', 'Forbidden', meta(403))],
      ['AccountSuspendedException', new AccountSuspendedException({ message: 'suspended', ...meta(400) })],
      ['SendingPausedException', new SendingPausedException({ message: 'paused', ...meta(400) })],
      [
        'MailFromDomainNotVerifiedException',
        new MailFromDomainNotVerifiedException({ message: 'MAIL FROM not verified', ...meta(400) }),
      ],
      [
        'NotFoundException',
        new NotFoundException({ message: 'Configuration set <x> does not exist', ...meta(404) }),
      ],
    ])('%s', (_label, error) => {
      expect(classifySesError(error)).toBe('account');
    });
  });

  it('treats other 4xx answers (about the message) as rejected', () => {
    expect(
      classifySesError(new MessageRejected({ message: 'Email address is not verified', ...meta(400) })),
    ).toBe('rejected');
    expect(classifySesError(new BadRequestException({ message: 'bad', ...meta(400) }))).toBe('rejected');
    expect(classifySesError(named('InvalidParameterValue', 'Missing final @domain', meta(400)))).toBe(
      'rejected',
    );
  });

  it('treats 5xx, timeouts, lost connections and anything unrecognized as ambiguous', () => {
    expect(classifySesError(new InternalServiceErrorException({ message: 'oops', ...meta(500) }))).toBe(
      'ambiguous',
    );
    expect(classifySesError(named('AccessDeniedException', 'odd', meta(503)))).toBe('ambiguous');
    expect(classifySesError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }))).toBe(
      'ambiguous',
    );
    expect(classifySesError(systemError('write EPIPE', { code: 'EPIPE', syscall: 'write' }))).toBe(
      'ambiguous',
    );
    expect(classifySesError(Object.assign(new Error('timed out'), { name: 'TimeoutError' }))).toBe(
      'ambiguous',
    );
    expect(
      classifySesError(
        named('TimeoutError', 'Socket timed out without establishing a connection within 5000 ms'),
      ),
    ).toBe('ambiguous');
    expect(classifySesError(new Error('SES accepted the email but returned no MessageId'))).toBe('ambiguous');
    expect(classifySesError('weird')).toBe('ambiguous');
  });

  it('calls a failure retryable exactly when SES certainly did not accept the email', () => {
    const retryable = (
      ['throttled', 'unreachable', 'account', 'rejected', 'ambiguous'] as SesErrorKind[]
    ).filter(isRetryableSesErrorKind);
    expect(retryable).toEqual(['throttled', 'unreachable', 'account']);
  });

  it('describes errors on one line with the HTTP status, or the system error code', () => {
    expect(describeSesError(new MessageRejected({ message: 'not\nverified', ...meta(400) }))).toBe(
      'MessageRejected: not verified (HTTP 400)',
    );
    expect(
      describeSesError(
        systemError('connect ECONNREFUSED 127.0.0.1:1', { code: 'ECONNREFUSED', syscall: 'connect' }),
      ),
    ).toBe('Error: connect ECONNREFUSED 127.0.0.1:1');
    expect(describeSesError(Object.assign(new AggregateError([], ''), { code: 'ECONNREFUSED' }))).toBe(
      'AggregateError: [ECONNREFUSED]',
    );
  });
});
