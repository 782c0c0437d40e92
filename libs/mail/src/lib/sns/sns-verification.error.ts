/** Why a posted message was refused. */
export type SnsRejectionReason =
  | 'malformed'
  | 'topic-not-allowed'
  | 'stale'
  | 'future'
  | 'certificate-url'
  | 'certificate'
  | 'certificate-busy'
  | 'certificate-unavailable'
  | 'unsupported-signature-version'
  | 'signature'
  | 'subscribe-url';

/** Reasons that say "cannot check it now" rather than "not genuine": SNS should deliver again. */
const RETRYABLE: ReadonlySet<SnsRejectionReason> = new Set(['certificate-busy', 'certificate-unavailable']);

/**
 * The message is not a genuine, current SNS delivery for an allowed topic, or (when
 * {@link retryable}) its signing certificate cannot be downloaded right now.
 */
export class SnsVerificationError extends Error {
  constructor(
    readonly reason: SnsRejectionReason,
    detail: string,
  ) {
    super(`SNS message rejected (${reason}): ${detail}`);
    this.name = 'SnsVerificationError';
  }

  /** The message may be genuine: answer 5xx so SNS retries it (SNS drops a message answered 4xx). */
  get retryable(): boolean {
    return RETRYABLE.has(this.reason);
  }
}
