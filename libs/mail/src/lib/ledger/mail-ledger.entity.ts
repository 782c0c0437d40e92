import { Column, Entity, PrimaryColumn } from 'typeorm';
import type { MailDeliveryStatus, MailLedgerEvent, MailLedgerStatus } from '../mail.types';
import type { MailHeader } from '../headers/mail-message.builder';

/** What a resend needs to rebuild the email. */
export interface StoredMailMessage {
  to: string[];
  from: string;
  subject: string;
  text: string;
  html?: string;
  headers: MailHeader[];
}

/** One row per idempotency key: the send ledger. Written with raw SQL (see MailLedgerRepository). */
@Entity({ name: 'mail_ledger' })
export class MailLedgerRecord {
  @PrimaryColumn({ type: 'text', name: 'idempotency_key' })
  idempotencyKey!: string;

  /** Stored status; `pending` rows past their window read as `unknown` or `failed` (see the repository). */
  @Column({ type: 'text' })
  status!: MailLedgerStatus;

  @Column({ type: 'text', array: true })
  recipients!: string[];

  @Column({ type: 'text' })
  sender!: string;

  @Column({ type: 'text' })
  subject!: string;

  @Column({ type: 'jsonb' })
  message!: StoredMailMessage;

  @Column({ type: 'text', name: 'content_hash' })
  contentHash!: string;

  @Column({ type: 'integer', default: 1 })
  attempts!: number;

  /** Owner of the current attempt: only it may record the outcome. */
  @Column({ type: 'uuid', name: 'claim_token' })
  claimToken!: string;

  @Column({ type: 'text', name: 'ses_message_id', nullable: true })
  sesMessageId!: string | null;

  @Column({ type: 'text', nullable: true })
  error!: string | null;

  @Column({ type: 'boolean', nullable: true })
  retryable!: boolean | null;

  @Column({ type: 'text', name: 'delivery_status', nullable: true })
  deliveryStatus!: MailDeliveryStatus | null;

  @Column({ type: 'timestamptz', name: 'delivery_updated_at', nullable: true })
  deliveryUpdatedAt!: Date | null;

  @Column({ type: 'text', name: 'last_resend_by', nullable: true })
  lastResendBy!: string | null;

  @Column({ type: 'timestamptz', name: 'last_resend_at', nullable: true })
  lastResendAt!: Date | null;

  @Column({ type: 'jsonb', default: () => `'[]'` })
  history!: MailLedgerEvent[];

  @Column({ type: 'timestamptz', name: 'attempt_started_at', default: () => 'now()' })
  attemptStartedAt!: Date;

  /** Set right before each SES call of the current attempt; null: SES has not seen this attempt. */
  @Column({ type: 'timestamptz', name: 'ses_called_at', nullable: true })
  sesCalledAt!: Date | null;

  @Column({ type: 'timestamptz', name: 'created_at', default: () => 'now()' })
  createdAt!: Date;

  @Column({ type: 'timestamptz', name: 'updated_at', default: () => 'now()' })
  updatedAt!: Date;
}
