/** What a caller asks {@link MailService.send} to deliver. */
export interface SendMailInput {
  /**
   * Names this email for all time, e.g. `digest:2026-11-22:user:42`. Printable ASCII without spaces,
   * at most 512 characters. A second send with the same key never reaches SES.
   */
  idempotencyKey: string;
  /** One address, or several that receive the same message (at most 50). */
  to: string | string[];
  /** Defaults to the module's `defaultFrom`. `Name <address>` is allowed. */
  from?: string;
  subject: string;
  text: string;
  html?: string;
  /** Extra headers (printable ASCII). Reserved names (From, To, Subject, Message-ID, X-Once-Key, List-Unsubscribe…) are refused. */
  headers?: Record<string, string>;
  /** Adds `List-Unsubscribe` and, with `oneClick`, `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058). */
  listUnsubscribe?: ListUnsubscribeOptions;
}

/** How {@link MailService.send} treats a key that already has a ledger row. */
export interface SendMailOptions {
  /**
   * Take over a `pending` row whose SES call never started, at once, and send it. Pass it only
   * while holding an exclusive claim on the key (for example `@Idempotent`'s on the SQS message):
   * whoever inserted the row is then gone. Safe even if it is not: the row's first sender checks
   * its claim token right before calling SES and, finding it taken, does not call SES.
   */
  takeOverUnsent?: boolean;
  /**
   * The caller believes the key was never used (e.g. an SQS message received for the first time,
   * see `isFirstDelivery` of `@once/dedup/sqs`). The send then waits for its rate slot first and
   * checks the suppression list and inserts its row already stamped in one statement: an email
   * costs two commits instead of three and two reads. Wrong guesses stay correct (a key used before
   * still gets its duplicate answer), but such a duplicate has spent a rate slot and waited for it.
   * Default false: the key is looked up before any slot is taken.
   */
  likelyNew?: boolean;
}

export interface ListUnsubscribeOptions {
  /** HTTPS unsubscribe URL; required for one-click. */
  url?: string;
  /** `mailto:` URL or a bare address. */
  mailto?: string;
  /** Advertise RFC 8058 one-click unsubscribe (POST to `url`). */
  oneClick?: boolean;
}

/** State of a ledger row. `unknown`: SES may or may not have accepted the email (see README). */
export type MailLedgerStatus = 'pending' | 'sent' | 'failed' | 'suppressed' | 'unknown';

/** Outcome of one call to {@link MailService.send} or {@link MailLedgerService.resend}. */
export type MailSendStatus = 'sent' | 'duplicate' | 'suppressed' | 'failed' | 'unknown';

export interface MailSendResult {
  status: MailSendStatus;
  idempotencyKey: string;
  /** The key's ledger state after this call; for `duplicate`, the state of the first send. */
  ledgerStatus: MailLedgerStatus;
  sesMessageId?: string;
  error?: string;
  /** `failed` only: SES certainly did not accept the email, so a deliberate resend cannot duplicate it. */
  retryable?: boolean;
  /** `duplicate` of a send that is still pending: ask again later (for example let SQS redeliver). */
  inFlight?: boolean;
  /**
   * With `inFlight`: milliseconds until the pending send's window ends and its row reads `failed`
   * (never reached SES) or `unknown` (SES was called). Asking earlier gets `inFlight` again.
   */
  retryAfterMs?: number;
  /** `duplicate` whose content differs from the first send's: the key was reused for another email. */
  contentMismatch?: boolean;
  /** Recipients left out because they are on the suppression list. */
  suppressedRecipients?: string[];
  /** Attempts recorded for the key (resends add one each). */
  attempts: number;
  /** The slot the shared rate limiter granted (Redis clock), when SES was called. */
  slotAt?: Date;
}

/** Delivery feedback SES reported for a sent row. */
export type MailDeliveryStatus = 'delivered' | 'bounced' | 'soft-bounced' | 'complained';

/** One event in a ledger row's history. */
export interface MailLedgerEvent {
  at: string;
  event: string;
  attempt: number;
  actor?: string;
  sesMessageId?: string;
  error?: string;
  previousStatus?: MailLedgerStatus;
  suppressed?: string[];
}

/** A ledger row as {@link MailLedgerService} shows it. Bodies are not included. */
export interface MailLedgerEntry {
  idempotencyKey: string;
  /**
   * Effective status: a `pending` row reads as `unknown` once its SES call is older than the stale
   * window, and as `failed` (retryable) when its sender stopped before calling SES.
   */
  status: MailLedgerStatus;
  recipients: string[];
  from: string;
  subject: string;
  sesMessageId?: string;
  error?: string;
  retryable?: boolean;
  attempts: number;
  deliveryStatus?: MailDeliveryStatus;
  createdAt: Date;
  updatedAt: Date;
  attemptStartedAt: Date;
  /** When the current attempt called SES; unset while it has not (so SES certainly has not seen it). */
  sesCalledAt?: Date;
  lastResendBy?: string;
  lastResendAt?: Date;
  history: MailLedgerEvent[];
}

export interface MailLedgerListQuery {
  status?: MailLedgerStatus;
  recipient?: string;
  /** 1–500, default 50. */
  limit?: number;
  /** `nextCursor` of the previous page. */
  cursor?: string;
}

export interface MailLedgerPage {
  items: MailLedgerEntry[];
  nextCursor?: string;
}
