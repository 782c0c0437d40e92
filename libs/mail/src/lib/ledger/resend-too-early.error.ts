import { MailResendNotAllowedError } from '../mail.errors';

/**
 * `resend` was asked for an `unknown` row whose last SES call started less than `staleAfterMs`
 * ago: that call may not be settled yet, so a resend now could overlap it. Retry after
 * `resendAllowedAt`. A {@link MailResendNotAllowedError} (HTTP 409 in the admin API).
 */
export class MailResendTooEarlyError extends MailResendNotAllowedError {
  constructor(
    idempotencyKey: string,
    readonly resendAllowedAt: Date,
  ) {
    super(idempotencyKey, 'unknown');
    this.name = 'MailResendTooEarlyError';
    this.message =
      `Cannot resend "${idempotencyKey}" yet: its last SES call started less than the stale window ago ` +
      `and may not be settled; it can be resent from ${resendAllowedAt.toISOString()}`;
  }
}
