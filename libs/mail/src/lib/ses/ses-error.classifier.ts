/**
 * How a failed SES call relates to delivery:
 * - `throttled`: SES refused for rate reasons and certainly did not accept the email; back off and retry.
 * - `rejected`: SES answered with a client error and certainly did not accept the email.
 * - `ambiguous`: no answer, a timeout or a 5xx — SES may have accepted it; never retried automatically.
 */
export type SesErrorKind = 'throttled' | 'rejected' | 'ambiguous';

const THROTTLING_NAMES = new Set([
  'TooManyRequestsException',
  'ThrottlingException',
  'Throttling',
  'ThrottledException',
  'LimitExceededException',
  'SendingRateExceeded',
  'RequestLimitExceeded',
  'TooManyRequests',
]);

interface SdkErrorShape {
  name?: unknown;
  $fault?: unknown;
  $metadata?: { httpStatusCode?: unknown };
}

/** Classifies an error thrown by `SESv2Client.send`. */
export function classifySesError(error: unknown): SesErrorKind {
  const shape = (typeof error === 'object' && error !== null ? error : {}) as SdkErrorShape;
  const name = typeof shape.name === 'string' ? shape.name : '';
  const status =
    typeof shape.$metadata?.httpStatusCode === 'number' ? shape.$metadata.httpStatusCode : undefined;
  if (THROTTLING_NAMES.has(name) || status === 429) return 'throttled';
  if (status !== undefined && status >= 400 && status < 500) return 'rejected';
  return 'ambiguous';
}

/** A one-line description of an SES error, safe for logs and the ledger. */
export function describeSesError(error: unknown): string {
  if (error instanceof Error) {
    const status = (error as SdkErrorShape).$metadata?.httpStatusCode;
    const text = `${error.name}: ${error.message}`.replace(/\s+/g, ' ').slice(0, 500);
    return typeof status === 'number' ? `${text} (HTTP ${status})` : text;
  }
  return String(error).slice(0, 500);
}
