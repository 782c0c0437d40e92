/** A {@link SendMailInput} that can never be sent (bad address, header injection…). A caller bug: nothing is recorded. */
export class MailValidationError extends Error {
  constructor(readonly issues: readonly string[]) {
    super(`Invalid mail: ${issues.join('; ')}`);
    this.name = 'MailValidationError';
  }
}

/** `resend` was asked for a key that does not exist or is not `failed`/`unknown`. */
export class MailResendNotAllowedError extends Error {
  constructor(
    readonly idempotencyKey: string,
    readonly currentStatus: string,
  ) {
    super(
      `Cannot resend "${idempotencyKey}": its status is ${currentStatus}; only failed or unknown mail can be resent`,
    );
    this.name = 'MailResendNotAllowedError';
  }
}
