import { MigrationInterface, QueryRunner } from 'typeorm';

export class CreateMailTables1763920000000 implements MigrationInterface {
  name = 'CreateMailTables1763920000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE IF NOT EXISTS mail_ledger (
        idempotency_key text PRIMARY KEY CHECK (length(idempotency_key) BETWEEN 1 AND 512),
        status text NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'suppressed', 'unknown')),
        recipients text[] NOT NULL,
        sender text NOT NULL,
        subject text NOT NULL,
        message jsonb NOT NULL,
        content_hash text NOT NULL,
        attempts integer NOT NULL DEFAULT 1,
        claim_token uuid NOT NULL,
        ses_message_id text,
        error text,
        retryable boolean,
        delivery_status text CHECK (delivery_status IN ('delivered', 'bounced', 'soft-bounced', 'complained')),
        delivery_updated_at timestamptz,
        last_resend_by text,
        last_resend_at timestamptz,
        history jsonb NOT NULL DEFAULT '[]',
        attempt_started_at timestamptz NOT NULL DEFAULT now(),
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await queryRunner.query(
      'CREATE INDEX IF NOT EXISTS mail_ledger_created_idx ON mail_ledger (created_at DESC, idempotency_key DESC)',
    );
    await queryRunner.query(
      'CREATE INDEX IF NOT EXISTS mail_ledger_status_created_idx ON mail_ledger (status, created_at DESC, idempotency_key DESC)',
    );
    await queryRunner.query(
      'CREATE INDEX IF NOT EXISTS mail_ledger_recipients_idx ON mail_ledger USING gin (recipients)',
    );
    await queryRunner.query(
      'CREATE INDEX IF NOT EXISTS mail_ledger_ses_message_id_idx ON mail_ledger (ses_message_id) WHERE ses_message_id IS NOT NULL',
    );
    await queryRunner.query(`
      CREATE TABLE IF NOT EXISTS mail_suppressions (
        email text PRIMARY KEY CHECK (email = lower(email)),
        reason text NOT NULL CHECK (reason IN ('bounce', 'complaint', 'manual')),
        detail jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await queryRunner.query(`
      CREATE TABLE IF NOT EXISTS mail_sns_messages (
        message_id text PRIMARY KEY,
        topic_arn text NOT NULL,
        type text NOT NULL,
        received_at timestamptz NOT NULL DEFAULT now()
      )`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP TABLE IF EXISTS mail_sns_messages');
    await queryRunner.query('DROP TABLE IF EXISTS mail_suppressions');
    await queryRunner.query('DROP TABLE IF EXISTS mail_ledger');
  }
}
