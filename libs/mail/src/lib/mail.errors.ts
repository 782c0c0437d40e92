import { BadRequestException } from '@nestjs/common';

/**
 * A {@link SendMailInput} that can never be sent (bad address, header injection…). A caller bug:
 * nothing is recorded. A Nest `BadRequestException`, so an HTTP caller answers 400 with the issues;
 * each issue starts with the field it is about (`to.1: …`, `listUnsubscribe.url: …`).
 */
export class MailValidationError extends BadRequestException {
  /** The fields the issues are about, e.g. `['from', 'listUnsubscribe.url']`. */
  readonly fields: readonly string[];

  constructor(readonly issues: readonly string[]) {
    const message = `Invalid mail: ${issues.join('; ')}`;
    super({ statusCode: 400, error: 'Bad Request', message, issues });
    this.message = message;
    this.name = 'MailValidationError';
    this.fields = [...new Set(issues.map((issue) => issue.split(':', 1)[0]))];
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
