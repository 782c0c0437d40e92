import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { queryRows } from '../database/query-rows.util';
import { normalizeAddress } from '../headers/mail-message.builder';
import type { MailSuppressionReason } from './mail-suppression.entity';

export interface MailSuppressionEntry {
  email: string;
  reason: MailSuppressionReason;
  detail: Record<string, unknown>;
  createdAt: Date;
  updatedAt: Date;
}

/** The suppression list (`mail_suppressions`): addresses {@link MailService} never sends to. */
@Injectable()
export class MailSuppressionService {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /**
   * The comparison keys (see `normalizeAddress`) of the suppressed addresses among `emails`. Also
   * matches entries stored in the older plain lower-cased form (IDN domains not in ASCII).
   */
  async findSuppressed(emails: readonly string[]): Promise<Set<string>> {
    if (emails.length === 0) return new Set();
    const keyOf = new Map<string, string>();
    for (const email of emails) {
      const key = normalizeAddress(email);
      keyOf.set(key, key);
      const legacy = email.trim().toLowerCase();
      if (!keyOf.has(legacy)) keyOf.set(legacy, key);
    }
    const rows = await queryRows<{ email: string }>(
      this.dataSource,
      'SELECT email FROM mail_suppressions WHERE email = ANY($1::text[])',
      [[...keyOf.keys()]],
    );
    return new Set(rows.map((row) => keyOf.get(row.email) ?? row.email));
  }

  async isSuppressed(email: string): Promise<boolean> {
    return (await this.findSuppressed([email])).size > 0;
  }

  async get(email: string): Promise<MailSuppressionEntry | undefined> {
    const rows = await queryRows<{
      email: string;
      reason: MailSuppressionReason;
      detail: Record<string, unknown>;
      created_at: Date;
      updated_at: Date;
    }>(
      this.dataSource,
      'SELECT email, reason, detail, created_at, updated_at FROM mail_suppressions WHERE email = $1',
      [normalizeAddress(email)],
    );
    const row = rows[0];
    return (
      row && {
        email: row.email,
        reason: row.reason,
        detail: row.detail,
        createdAt: row.created_at,
        updatedAt: row.updated_at,
      }
    );
  }

  /** Adds or updates an entry. `db` lets callers do it inside their transaction. */
  async suppress(
    email: string,
    reason: MailSuppressionReason,
    detail: Record<string, unknown> = {},
    db: DataSource | EntityManager = this.dataSource,
  ): Promise<void> {
    await db.query(
      `INSERT INTO mail_suppressions (email, reason, detail) VALUES ($1, $2, $3::jsonb)
       ON CONFLICT (email) DO UPDATE SET reason = EXCLUDED.reason, detail = EXCLUDED.detail, updated_at = now()`,
      [normalizeAddress(email), reason, JSON.stringify(detail)],
    );
  }

  /** Removes an entry (for example after the owner fixed their mailbox). Returns whether one existed. */
  async unsuppress(email: string): Promise<boolean> {
    const rows = await queryRows<{ email: string }>(
      this.dataSource,
      'DELETE FROM mail_suppressions WHERE email = $1 RETURNING email',
      [normalizeAddress(email)],
    );
    return rows.length > 0;
  }
}
