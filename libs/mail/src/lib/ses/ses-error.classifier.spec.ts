import {
  BadRequestException,
  InternalServiceErrorException,
  LimitExceededException,
  MessageRejected,
  TooManyRequestsException,
} from '@aws-sdk/client-sesv2';
import { classifySesError, describeSesError } from './ses-error.classifier';

const meta = (httpStatusCode: number) => ({ $metadata: { httpStatusCode } });

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

  it('treats other 4xx answers as rejected', () => {
    expect(
      classifySesError(new MessageRejected({ message: 'Email address is not verified', ...meta(400) })),
    ).toBe('rejected');
    expect(classifySesError(new BadRequestException({ message: 'bad', ...meta(400) }))).toBe('rejected');
  });

  it('treats 5xx, timeouts and network errors as ambiguous', () => {
    expect(classifySesError(new InternalServiceErrorException({ message: 'oops', ...meta(500) }))).toBe(
      'ambiguous',
    );
    expect(classifySesError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }))).toBe(
      'ambiguous',
    );
    expect(classifySesError(Object.assign(new Error('timed out'), { name: 'TimeoutError' }))).toBe(
      'ambiguous',
    );
    expect(classifySesError('weird')).toBe('ambiguous');
  });

  it('describes errors on one line with the HTTP status', () => {
    expect(describeSesError(new MessageRejected({ message: 'not\nverified', ...meta(400) }))).toBe(
      'MessageRejected: not verified (HTTP 400)',
    );
  });
});
