import { Column, Entity, PrimaryColumn } from 'typeorm';

export type MailSuppressionReason = 'bounce' | 'complaint' | 'manual';

/** An address no email goes to: hard bounces, complaints, manual entries. */
@Entity({ name: 'mail_suppressions' })
export class MailSuppression {
  /** Lower-cased address. */
  @PrimaryColumn({ type: 'text' })
  email!: string;

  @Column({ type: 'text' })
  reason!: MailSuppressionReason;

  /** Bounce type/subtype, diagnostic, feedback id, SNS message id… */
  @Column({ type: 'jsonb', default: () => `'{}'` })
  detail!: Record<string, unknown>;

  @Column({ type: 'timestamptz', name: 'created_at', default: () => 'now()' })
  createdAt!: Date;

  @Column({ type: 'timestamptz', name: 'updated_at', default: () => 'now()' })
  updatedAt!: Date;
}
