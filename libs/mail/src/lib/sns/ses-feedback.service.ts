import { Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { z } from 'zod';
import { queryRows } from '../database/query-rows.util';
import { normalizeAddress } from '../headers/mail-message.builder';
import { MailLedgerRepository } from '../ledger/mail-ledger.repository';
import { MailSuppressionService } from '../suppression/mail-suppression.service';
import type { SnsMessage } from './sns-signature.verifier';

export interface SesFeedbackOutcome {
  /** `duplicate`: this SNS MessageId was processed before. `ignored`: not an SES notification this module acts on. */
  status: 'processed' | 'duplicate' | 'ignored';
  notificationType?: string;
  /** Addresses added to the suppression list. */
  suppressed: string[];
}

const recipientSchema = z.object({ emailAddress: z.string().min(3) }).loose();
const sesNotificationSchema = z
  .object({
    notificationType: z.string().optional(),
    eventType: z.string().optional(),
    mail: z.object({ messageId: z.string().optional() }).loose().optional(),
    bounce: z
      .object({
        bounceType: z.string(),
        bounceSubType: z.string().optional(),
        bouncedRecipients: z.array(recipientSchema.extend({ diagnosticCode: z.string().optional() })),
        feedbackId: z.string().optional(),
      })
      .loose()
      .optional(),
    complaint: z
      .object({
        complainedRecipients: z.array(recipientSchema),
        complaintFeedbackType: z.string().optional(),
        feedbackId: z.string().optional(),
      })
      .loose()
      .optional(),
  })
  .loose();

/**
 * Acts on SES bounce, complaint and delivery notifications (already verified SNS Notifications):
 * hard bounces and complaints suppress their recipients, and the ledger row of the original email
 * records the feedback. Each SNS MessageId is processed once, in one transaction with its effects.
 */
@Injectable()
export class SesFeedbackService {
  private readonly logger = new Logger(SesFeedbackService.name);

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly suppressions: MailSuppressionService,
    private readonly ledger: MailLedgerRepository,
  ) {}

  async process(
    message: Pick<SnsMessage, 'MessageId' | 'TopicArn' | 'Type' | 'Message'>,
  ): Promise<SesFeedbackOutcome> {
    let json: unknown;
    try {
      json = JSON.parse(message.Message);
    } catch {
      json = undefined;
    }
    const parsed = sesNotificationSchema.safeParse(json);
    const notification = parsed.success ? parsed.data : undefined;
    const type = notification?.notificationType ?? notification?.eventType;

    return this.dataSource.transaction(async (db) => {
      const receipt = await queryRows<{ message_id: string }>(
        db,
        `INSERT INTO mail_sns_messages (message_id, topic_arn, type) VALUES ($1, $2, $3)
         ON CONFLICT (message_id) DO NOTHING RETURNING message_id`,
        [message.MessageId, message.TopicArn, type ?? message.Type],
      );
      if (receipt.length === 0) return { status: 'duplicate', notificationType: type, suppressed: [] };

      const sesMessageId = notification?.mail?.messageId;
      const suppressed: string[] = [];
      if (type === 'Bounce' && notification?.bounce) {
        const bounce = notification.bounce;
        const permanent = bounce.bounceType === 'Permanent';
        if (permanent) {
          for (const recipient of bounce.bouncedRecipients) {
            const email = normalizeAddress(recipient.emailAddress);
            await this.suppressions.suppress(
              email,
              'bounce',
              {
                bounceType: bounce.bounceType,
                bounceSubType: bounce.bounceSubType,
                diagnosticCode: recipient.diagnosticCode,
                feedbackId: bounce.feedbackId,
                snsMessageId: message.MessageId,
                sesMessageId,
              },
              db,
            );
            suppressed.push(email);
          }
        }
        if (sesMessageId) {
          const detail = `${bounce.bounceType}/${bounce.bounceSubType ?? '-'}`;
          await this.ledger.recordDelivery(db, sesMessageId, permanent ? 'bounced' : 'soft-bounced', detail);
        }
      } else if (type === 'Complaint' && notification?.complaint) {
        const complaint = notification.complaint;
        for (const recipient of complaint.complainedRecipients) {
          const email = normalizeAddress(recipient.emailAddress);
          await this.suppressions.suppress(
            email,
            'complaint',
            {
              complaintFeedbackType: complaint.complaintFeedbackType,
              feedbackId: complaint.feedbackId,
              snsMessageId: message.MessageId,
              sesMessageId,
            },
            db,
          );
          suppressed.push(email);
        }
        if (sesMessageId)
          await this.ledger.recordDelivery(db, sesMessageId, 'complained', complaint.complaintFeedbackType);
      } else if (type === 'Delivery' && sesMessageId) {
        await this.ledger.recordDelivery(db, sesMessageId, 'delivered', undefined);
      } else {
        this.logger.warn({
          msg: 'SNS notification is not an SES bounce, complaint or delivery',
          snsMessageId: message.MessageId,
        });
        return { status: 'ignored', notificationType: type, suppressed };
      }
      const stopped = suppressed.length > 0 ? await this.suppressUnsent(db, suppressed) : [];
      this.logger.log({
        msg: 'SES feedback processed',
        notificationType: type,
        snsMessageId: message.MessageId,
        sesMessageId,
        suppressedCount: suppressed.length,
        stoppedBeforeSes: stopped.length > 0 ? stopped : undefined,
      });
      return { status: 'processed', notificationType: type, suppressed };
    });
  }

  /**
   * Sends to these addresses that are queued but have not called SES (waiting for a rate-limit
   * slot) would go out after the suppression: their rows become `suppressed` in this transaction,
   * when every recipient of the row is now suppressed. The waiting sender's stamp before its SES
   * call needs the row `pending`, so it does not call SES (row locks order the two: a stamp that
   * won stays, and its call is in flight). Returns the keys stopped.
   */
  private async suppressUnsent(db: EntityManager, keys: string[]): Promise<string[]> {
    const rows = await queryRows<{ idempotency_key: string }>(
      db,
      `UPDATE mail_ledger l
          SET status = 'suppressed', updated_at = now(),
              history = history || jsonb_build_array(jsonb_build_object(
                'at', now(), 'event', 'suppressed-before-ses', 'attempt', attempts, 'suppressed', message->'to'))
        WHERE status = 'pending' AND ses_called_at IS NULL AND recipients && $1::text[]
          AND NOT EXISTS (SELECT 1 FROM unnest(l.recipients) AS r(email)
                           WHERE NOT EXISTS (SELECT 1 FROM mail_suppressions s WHERE s.email = r.email))
        RETURNING idempotency_key`,
      [keys],
    );
    return rows.map((row) => row.idempotency_key);
  }
}
