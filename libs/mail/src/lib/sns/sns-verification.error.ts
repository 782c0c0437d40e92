/** Why a posted message was refused; `certificate-busy` alone means "try again later", not "forged". */
export type SnsRejectionReason =
  | 'malformed'
  | 'topic-not-allowed'
  | 'stale'
  | 'future'
  | 'certificate-url'
  | 'certificate'
  | 'certificate-busy'
  | 'unsupported-signature-version'
  | 'signature'
  | 'subscribe-url';

/**
 * The message is not a genuine, current SNS delivery for an allowed topic, or (reason
 * `certificate-busy`) its signing certificate cannot be downloaded right now.
 */
export class SnsVerificationError extends Error {
  constructor(
    readonly reason: SnsRejectionReason,
    detail: string,
  ) {
    super(`SNS message rejected (${reason}): ${detail}`);
    this.name = 'SnsVerificationError';
  }
}
