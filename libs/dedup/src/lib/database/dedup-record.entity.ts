import { Column, Entity, Index, PrimaryColumn } from 'typeorm';
import type { RecordState } from '../dedup.types';

/**
 * A row of `dedup_records` (read-only view for apps; the lib writes with SQL). `key` is the stored
 * key `keyPrefix + scope + ':' + idemKey`. The indexes are the migrations' (declared for schema diffs).
 */
@Entity({ name: 'dedup_records' })
@Index('dedup_records_expires_at_idx', ['expiresAt'])
@Index('dedup_records_in_progress_key_idx', ['key'], { where: "state = 'IN_PROGRESS'" })
export class DedupRecord {
  @PrimaryColumn({ type: 'text', collation: 'C' })
  key!: string;

  @Column({ type: 'text' })
  scope!: string;

  @Column({ type: 'text', name: 'idem_key' })
  idemKey!: string;

  @Column({ type: 'text' })
  state!: RecordState;

  @Column({ type: 'text', select: false })
  token!: string;

  @Column({ type: 'bigint' })
  fence!: string;

  @Column({ type: 'text', name: 'message_id', nullable: true })
  messageId!: string | null;

  @Column({ type: 'jsonb', nullable: true })
  result!: unknown;

  @Column({ type: 'text', name: 'payload_hash', nullable: true })
  payloadHash!: string | null;

  @Column({ type: 'integer', default: 1 })
  attempts!: number;

  @Column({ type: 'timestamptz', name: 'lease_until', nullable: true })
  leaseUntil!: Date | null;

  @Column({ type: 'timestamptz', name: 'expires_at' })
  expiresAt!: Date;

  @Column({ type: 'timestamptz', name: 'created_at', default: () => 'now()' })
  createdAt!: Date;

  @Column({ type: 'timestamptz', name: 'updated_at', default: () => 'now()' })
  updatedAt!: Date;
}
