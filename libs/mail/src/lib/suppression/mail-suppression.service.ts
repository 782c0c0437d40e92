import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { addressKey } from '../address/mail-address';
import { queryRows } from '../database/query-rows.util';
import { MailLedgerRepository } from '../ledger/mail-ledger.repository';
import { inTransaction, lockAddressKeys } from './address-lock.util';
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
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly ledger: MailLedgerRepository,
  ) {}

  /**
   * The comparison keys (see `addressKey`) of the suppressed addresses among `emails`. Also
   * matches entries stored in the older plain lower-cased form (IDN domains not in ASCII).
   */
  async findSuppressed(emails: readonly string[]): Promise<Set<string>> {
    if (emails.length === 0) return new Set();
    const keyOf = new Map<string, string>();
    for (const email of emails) {
      const key = addressKey(email);
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
      [addressKey(email)],
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

  /**
   * Adds or updates an entry. `db` lets callers do it inside their transaction (several addresses in
   * one transaction: use {@link suppressAll}, which locks them in a deadlock-free order).
   */
  async suppress(
    email: string,
    reason: MailSuppressionReason,
    detail: Record<string, unknown> = {},
    db: DataSource | EntityManager = this.dataSource,
  ): Promise<void> {
    await this.suppressAll([{ email, detail }], reason, db);
  }

  /**
   * Adds or updates entries, in `db`'s transaction (or a new one). Sends that wait for these
   * mailboxes stop at once if every recipient is now suppressed (their rows become `suppressed`);
   * any send still lets out the suppressed recipients at its stamp before the SES call, unless that
   * stamp came first (its call is then in flight and this waits for the stamp to commit). Returns the
   * keys of the sends stopped.
   */
  async suppressAll(
    entries: ReadonlyArray<{ email: string; detail?: Record<string, unknown> }>,
    reason: MailSuppressionReason,
    db: DataSource | EntityManager = this.dataSource,
  ): Promise<{ emails: string[]; stoppedKeys: string[] }> {
    const keyed = entries.map((entry) => ({ key: addressKey(entry.email), detail: entry.detail ?? {} }));
    const emails = [...new Set(keyed.map((entry) => entry.key))];
    if (emails.length === 0) return { emails, stoppedKeys: [] };
    return inTransaction(db, async (tx) => {
      await lockAddressKeys(tx, emails, 'exclusive');
      for (const { key, detail } of keyed) {
        await tx.query(
          `INSERT INTO mail_suppressions (email, reason, detail) VALUES ($1, $2, $3::jsonb)
           ON CONFLICT (email) DO UPDATE SET reason = EXCLUDED.reason, detail = EXCLUDED.detail, updated_at = now()`,
          [key, reason, JSON.stringify(detail)],
        );
      }
      return { emails, stoppedKeys: await this.ledger.suppressUnsent(tx, emails) };
    });
  }

  /** Removes an entry (for example after the owner fixed their mailbox). Returns whether one existed. */
  async unsuppress(email: string): Promise<boolean> {
    const rows = await queryRows<{ email: string }>(
      this.dataSource,
      'DELETE FROM mail_suppressions WHERE email = $1 RETURNING email',
      [addressKey(email)],
    );
    return rows.length > 0;
  }
}
