import { randomUUID } from 'node:crypto';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { addressKey } from '../address/mail-address';
import { MailResendNotAllowedError } from '../mail.errors';
import { MAIL_OPTIONS, type ResolvedMailOptions } from '../mail.options';
import type {
  MailLedgerEntry,
  MailLedgerListQuery,
  MailLedgerPage,
  MailLedgerStatus,
  MailSendResult,
} from '../mail.types';
import { MailSuppressionService } from '../suppression/mail-suppression.service';
import { MailDispatcher } from './mail.dispatcher';
import { MailLedgerRepository, toLedgerEntry } from './mail-ledger.repository';
export {
  decodeMailLedgerCursor,
  encodeMailLedgerCursor,
  InvalidMailLedgerCursorError,
  type MailLedgerCursor,
} from './mail-ledger.repository';
import { MailResendTooEarlyError } from './resend-too-early.error';

/** Reads the send ledger and makes deliberate new attempts for `failed` and `unknown` rows. */
@Injectable()
export class MailLedgerService {
  private readonly logger = new Logger(MailLedgerService.name);

  constructor(
    @Inject(MAIL_OPTIONS) private readonly options: ResolvedMailOptions,
    private readonly repository: MailLedgerRepository,
    private readonly suppressions: MailSuppressionService,
    private readonly dispatcher: MailDispatcher,
  ) {}

  /**
   * Newest first; filter by effective status and/or recipient; page with `nextCursor`.
   * @throws InvalidMailLedgerCursorError for a `cursor` that is not the `nextCursor` of a page.
   */
  list(query: MailLedgerListQuery = {}): Promise<MailLedgerPage> {
    return this.repository.list(query);
  }

  /** Rows per effective status (as `list` filters them: stale `pending` rows count as `unknown` or `failed`). */
  countByStatus(): Promise<Record<MailLedgerStatus, number>> {
    return this.repository.countByStatus();
  }

  async get(idempotencyKey: string): Promise<MailLedgerEntry | undefined> {
    const row = await this.repository.find(idempotencyKey);
    return row && toLedgerEntry(row);
  }

  /**
   * Sends a `failed` or `unknown` row again, on purpose, recording `actor` (who decided). For
   * `unknown` rows this may deliver a second copy: that is the decision being recorded.
   * Suppressed recipients are still skipped. An `unknown` row can be resent only `staleAfterMs`
   * after its last SES call started (that call cannot be open any more then).
   * @throws MailResendTooEarlyError (a MailResendNotAllowedError) for an `unknown` row before then.
   * @throws MailResendNotAllowedError when the key is missing or in any other state.
   */
  async resend(idempotencyKey: string, { actor }: { actor: string }): Promise<MailSendResult> {
    if (!actor || actor.trim().length === 0 || actor.length > 200) {
      throw new Error('resend needs an actor (who decided to resend), 1–200 characters');
    }
    const token = randomUUID();
    const row = await this.repository.reclaimForResend(idempotencyKey, actor.trim(), token);
    if (!row) {
      const current = await this.repository.find(idempotencyKey);
      if (current?.effective_status === 'unknown' && current.ses_called_at) {
        throw new MailResendTooEarlyError(
          idempotencyKey,
          new Date(current.ses_called_at.getTime() + this.options.staleAfterMs),
        );
      }
      throw new MailResendNotAllowedError(idempotencyKey, current?.effective_status ?? 'missing');
    }
    this.logger.warn({ msg: 'mail resend requested', idempotencyKey, actor, attempt: row.attempts });

    const suppressedSet = await this.suppressions.findSuppressed(row.message.to);
    const suppressed = row.message.to.filter((address) => suppressedSet.has(addressKey(address)));
    const recipients = row.message.to.filter((address) => !suppressedSet.has(addressKey(address)));
    if (recipients.length === 0) {
      await this.repository.complete(idempotencyKey, token, { status: 'suppressed', suppressed });
      return {
        status: 'suppressed',
        idempotencyKey,
        ledgerStatus: 'suppressed',
        suppressedRecipients: suppressed,
        attempts: row.attempts,
      };
    }
    return this.dispatcher.deliver(row, recipients, suppressed);
  }
}
