import { Column, Entity, Index, PrimaryGeneratedColumn } from 'typeorm';
import type { BotReason, UserAgentClass } from './user-agent.classifier';

/** One hit on a tracking link: a click, or a suspected bot when `bot` is true. */
@Entity({ name: 'tracking_clicks' })
@Index('tracking_clicks_clicked_at_idx', ['clickedAt'])
@Index('tracking_clicks_campaign_clicked_at_idx', ['campaign', 'clickedAt'])
export class TrackingClick {
  @PrimaryGeneratedColumn({ type: 'bigint' })
  id!: string;

  /** Given when the click is recorded; unique, so a batch written twice lands once. Null on older rows. */
  @Index('tracking_clicks_click_id_key', { unique: true })
  @Column({ type: 'uuid', name: 'click_id', nullable: true })
  clickId!: string | null;

  @Column({ type: 'timestamptz', name: 'clicked_at' })
  clickedAt!: Date;

  /** The link's target as signed (path, and query/fragment if it had them). */
  @Column({ type: 'text' })
  path!: string;

  @Column({ type: 'text' })
  campaign!: string;

  @Column({ type: 'text', name: 'recipient_id', nullable: true })
  recipientId!: string | null;

  @Column({ type: 'text', name: 'message_key', nullable: true })
  messageKey!: string | null;

  @Column({ type: 'text', nullable: true })
  content!: string | null;

  @Column({ type: 'text', nullable: true })
  term!: string | null;

  @Column({ type: 'varchar', length: 32, name: 'user_agent_class' })
  userAgentClass!: UserAgentClass;

  @Column({ type: 'boolean' })
  bot!: boolean;

  @Column({ type: 'varchar', length: 32, name: 'bot_reason', nullable: true })
  botReason!: BotReason | null;
}
