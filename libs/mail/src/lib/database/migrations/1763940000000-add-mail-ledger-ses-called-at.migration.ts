import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `ses_called_at`: set, fenced by the claim token, right before each SES call. A pending row
 * without it certainly never reached SES, so it can be taken over and sent; one with it is
 * ambiguous once stale. Rows pending before this migration count as called (the safe direction).
 */
export class AddMailLedgerSesCalledAt1763940000000 implements MigrationInterface {
  name = 'AddMailLedgerSesCalledAt1763940000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('ALTER TABLE mail_ledger ADD COLUMN IF NOT EXISTS ses_called_at timestamptz');
    await queryRunner.query(
      `UPDATE mail_ledger SET ses_called_at = attempt_started_at WHERE status = 'pending' AND ses_called_at IS NULL`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('ALTER TABLE mail_ledger DROP COLUMN IF EXISTS ses_called_at');
  }
}
