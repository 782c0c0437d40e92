import { Column, Entity, PrimaryColumn } from 'typeorm';

/** An SNS message already processed: SNS delivers at least once, so MessageIds are deduplicated. */
@Entity({ name: 'mail_sns_messages' })
export class SnsMessageReceipt {
  @PrimaryColumn({ type: 'text', name: 'message_id' })
  messageId!: string;

  @Column({ type: 'text', name: 'topic_arn' })
  topicArn!: string;

  @Column({ type: 'text' })
  type!: string;

  @Column({ type: 'timestamptz', name: 'received_at', default: () => 'now()' })
  receivedAt!: Date;
}
