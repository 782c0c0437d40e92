/**
 * How a failed SES call relates to delivery:
 * - `throttled`: SES refused for rate reasons and certainly did not accept the email; back off and
 *   retry in process, then record `failed` (retryable).
 * - `unreachable`: the request never left for SES (DNS failure, connection refused, no credentials,
 *   invalid endpoint); SES certainly did not accept it. Recorded `failed` (retryable), not retried
 *   in process: the cause is an outage or a configuration error, and the queue redelivers later.
 * - `account`: SES refused for a reason about the account or its configuration, not the message
 *   (authentication, IAM, account suspended or sending paused, MAIL FROM domain or configuration set
 *   missing). SES certainly did not accept it; recorded `failed` (retryable) once the account is
 *   fixed, not retried in process.
 * - `rejected`: SES refused this message (bad address, invalid parameter…); recorded `failed`, not
 *   retryable.
 * - `ambiguous`: no answer, a timeout, a lost connection or a 5xx — SES may have accepted it;
 *   recorded `unknown` and never retried automatically.
 */
export type SesErrorKind = 'throttled' | 'unreachable' | 'account' | 'rejected' | 'ambiguous';

/** Whether a failure of this kind leaves the email certainly not accepted, so a resend is safe. */
export function isRetryableSesErrorKind(kind: SesErrorKind): boolean {
  return kind === 'throttled' || kind === 'unreachable' || kind === 'account';
}

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

/** Refusals about the account, its credentials or its configuration rather than the message. */
const ACCOUNT_NAMES = new Set([
  // Authorization and authentication
  'AccessDeniedException',
  'AccessDenied',
  'NotAuthorized',
  'UnauthorizedOperation',
  'UnrecognizedClientException',
  'InvalidClientTokenId',
  'InvalidAccessKeyId',
  'InvalidSignatureException',
  'SignatureDoesNotMatch',
  'IncompleteSignature',
  'IncompleteSignatureException',
  'MissingAuthenticationToken',
  'MissingAuthenticationTokenException',
  'ExpiredToken',
  'ExpiredTokenException',
  'RequestExpired',
  'OptInRequired',
  // Account state and configuration (SES v2, and the v1 names of the same conditions)
  'AccountSuspendedException',
  'SendingPausedException',
  'AccountSendingPausedException',
  'ConfigurationSetSendingPausedException',
  'MailFromDomainNotVerifiedException',
  'MailFromDomainNotVerified',
  'NotFoundException',
  'ConfigurationSetDoesNotExistException',
  'ConfigurationSetDoesNotExist',
]);

/**
 * Errors raised before a request exists: credentials could not be resolved (the SDK signs the
 * request right before handing it to the HTTP handler) or the endpoint could not be resolved.
 */
const PRE_REQUEST_NAMES = new Set([
  'CredentialsProviderError',
  'TokenProviderError',
  'ProviderError',
  'EndpointError',
]);

/** Codes only raised while resolving the host or opening the connection: nothing was sent. */
const PRE_CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EAI_FAIL',
  'ERR_INVALID_URL',
]);

/** Codes that mean "not connected" only when raised by `connect` (later they can follow a sent request). */
const CONNECT_ONLY_CODES = new Set(['EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);

interface SdkErrorShape {
  name?: unknown;
  code?: unknown;
  syscall?: unknown;
  cause?: unknown;
  errors?: unknown;
  $fault?: unknown;
  $metadata?: { httpStatusCode?: unknown };
}

const shapeOf = (error: unknown): SdkErrorShape =>
  (typeof error === 'object' && error !== null ? error : {}) as SdkErrorShape;

/**
 * True only for errors that certainly happened before any byte of the request could reach SES.
 * Connection resets, timeouts (request or connection) and anything unrecognized are not: SES may
 * have received the request.
 */
function isPreRequestFailure(error: unknown, depth = 0): boolean {
  if (depth > 3) return false;
  const shape = shapeOf(error);
  const name = typeof shape.name === 'string' ? shape.name : '';
  const code = typeof shape.code === 'string' ? shape.code : '';
  // Node's happy-eyeballs connect fails with an AggregateError of one error per address tried
  // (its own `code` is only the first one's).
  if (Array.isArray(shape.errors) && shape.errors.length > 0) {
    return shape.errors.every((inner) => isPreRequestFailure(inner, depth + 1));
  }
  if (PRE_REQUEST_NAMES.has(name) || PRE_CONNECTION_CODES.has(code)) return true;
  if (shape.syscall === 'getaddrinfo') return true;
  if (shape.syscall === 'connect' && CONNECT_ONLY_CODES.has(code)) return true;
  // A wrapper (e.g. fetch's "fetch failed") around a pre-request failure.
  if (shape.cause !== undefined) return isPreRequestFailure(shape.cause, depth + 1);
  return false;
}

/** Classifies an error thrown by `SESv2Client.send`. */
export function classifySesError(error: unknown): SesErrorKind {
  const shape = shapeOf(error);
  const name = typeof shape.name === 'string' ? shape.name : '';
  const status =
    typeof shape.$metadata?.httpStatusCode === 'number' ? shape.$metadata.httpStatusCode : undefined;
  if (THROTTLING_NAMES.has(name) || status === 429) return 'throttled';
  if (status === undefined && isPreRequestFailure(error)) return 'unreachable';
  const clientError = status !== undefined && status >= 400 && status < 500;
  if (ACCOUNT_NAMES.has(name) && (status === undefined || clientError)) return 'account';
  if (status === 401 || status === 403 || status === 404) return 'account';
  if (clientError) return 'rejected';
  return 'ambiguous';
}

/** A one-line description of an SES error, safe for logs and the ledger. */
export function describeSesError(error: unknown): string {
  if (error instanceof Error) {
    const { $metadata, code } = error as SdkErrorShape;
    const status = $metadata?.httpStatusCode;
    let text = `${error.name}: ${error.message}`;
    if (typeof code === 'string' && !error.message.includes(code)) text += ` [${code}]`;
    text = text.replace(/\s+/g, ' ').slice(0, 500);
    return typeof status === 'number' ? `${text} (HTTP ${status})` : text;
  }
  return String(error).slice(0, 500);
}
