export * from './lib/mail.module';
export {
  MAIL_OPTIONS,
  type AdminErrorOptions,
  type MailModuleAsyncOptions,
  type MailModuleOptions,
  type MailRateLimitOptions,
  type MailThrottleRetryOptions,
  type RedactorOptions,
  type SesClientConfig,
  type SesClientOptions,
  MIN_STALE_MARGIN_MS,
} from './lib/mail.options';
export * from './lib/mail.types';
export * from './lib/mail.errors';
export * from './lib/mail.service';
export { IDEMPOTENCY_KEY_HEADER } from './lib/headers/mail-message.builder';
export {
  AddressSyntaxError,
  addressKey,
  parseAddress,
  parseMailbox,
  type NormalizedAddress,
  type ParsedMailbox,
} from './lib/address/mail-address';
export * from './lib/ledger/mail-ledger.service';
export { MailResendTooEarlyError } from './lib/ledger/resend-too-early.error';
export { SesDeadlineError } from './lib/ses/ses.transport';
export { MailLedgerRecord, type StoredMailMessage } from './lib/ledger/mail-ledger.entity';
export { MailRateLimiter, type RateReservation } from './lib/rate-limit/mail-rate.limiter';
export {
  REDIS_CALL_TIMEOUT_MS,
  redisCall,
  withLocalRateFallback,
  type LocalFallbackBudget,
} from './lib/rate-limit/local-fallback.budget';
export { classifySesError, type SesErrorKind } from './lib/ses/ses-error.classifier';
export * from './lib/suppression/mail-suppression.entity';
export * from './lib/suppression/mail-suppression.service';
export * from './lib/sns/sns-signature.verifier';
export * from './lib/sns/ses-feedback.service';
export * from './lib/sns/sns-message-receipt.entity';
export * from './lib/admin/admin-error.reporter';
export * from './lib/admin/admin-error.filter';
export type { AdminErrorContext, AdminErrorRequest } from './lib/admin/admin-error-mail.renderer';
export { SecretRedactor, REDACTED, DEFAULT_REDACTED_KEYS } from './lib/admin/secret.redactor';
export { errorFingerprint } from './lib/admin/error.fingerprint';
export * from './lib/database/mail.migrations';
export type { AdminErrorBudgetOptions, MailModuleExtras, MailOptionsFactory } from './lib/mail.options';
