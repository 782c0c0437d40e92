import { Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { z } from 'zod';
import { queryRows } from '../database/query-rows.util';
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

const withoutNul = (text: string): string => text.replace(/\0/g, '\uFFFD');

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
      // Postgres text refuses NUL; a signed notification carrying one would fail, and SNS redeliver it, forever.
      json = JSON.parse(message.Message, (_key, value: unknown) =>
        typeof value === 'string' ? withoutNul(value) : value,
      );
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
        [withoutNul(message.MessageId), message.TopicArn, type ?? message.Type],
      );
      if (receipt.length === 0) return { status: 'duplicate', notificationType: type, suppressed: [] };

      const sesMessageId = notification?.mail?.messageId;
      let suppressed: string[] = [];
      let stopped: string[] = [];
      if (type === 'Bounce' && notification?.bounce) {
        const bounce = notification.bounce;
        const permanent = bounce.bounceType === 'Permanent';
        if (permanent) {
          ({ emails: suppressed, stoppedKeys: stopped } = await this.suppressions.suppressAll(
            bounce.bouncedRecipients.map((recipient) => ({
              email: recipient.emailAddress,
              detail: {
                bounceType: bounce.bounceType,
                bounceSubType: bounce.bounceSubType,
                diagnosticCode: recipient.diagnosticCode,
                feedbackId: bounce.feedbackId,
                snsMessageId: message.MessageId,
                sesMessageId,
              },
            })),
            'bounce',
            db,
          ));
        }
        if (sesMessageId) {
          const detail = `${bounce.bounceType}/${bounce.bounceSubType ?? '-'}`;
          await this.ledger.recordDelivery(db, sesMessageId, permanent ? 'bounced' : 'soft-bounced', detail);
        }
      } else if (type === 'Complaint' && notification?.complaint) {
        const complaint = notification.complaint;
        ({ emails: suppressed, stoppedKeys: stopped } = await this.suppressions.suppressAll(
          complaint.complainedRecipients.map((recipient) => ({
            email: recipient.emailAddress,
            detail: {
              complaintFeedbackType: complaint.complaintFeedbackType,
              feedbackId: complaint.feedbackId,
              snsMessageId: message.MessageId,
              sesMessageId,
            },
          })),
          'complaint',
          db,
        ));
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
}
