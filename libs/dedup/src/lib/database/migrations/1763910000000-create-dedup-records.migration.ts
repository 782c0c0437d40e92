import { MigrationInterface, QueryRunner } from 'typeorm';

export class CreateDedupRecords1763910000000 implements MigrationInterface {
  name = 'CreateDedupRecords1763910000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('CREATE SEQUENCE IF NOT EXISTS dedup_fence_seq');
    // key uses the "C" collation: byte order for keyset pagination, and prefix LIKE can use the index.
    await queryRunner.query(`
      CREATE TABLE IF NOT EXISTS dedup_records (
        key text COLLATE "C" PRIMARY KEY,
        scope text NOT NULL,
        idem_key text NOT NULL,
        state text NOT NULL CHECK (state IN ('IN_PROGRESS', 'COMPLETED')),
        token text NOT NULL,
        fence bigint NOT NULL,
        message_id text,
        result jsonb,
        attempts integer NOT NULL DEFAULT 1,
        lease_until timestamptz,
        expires_at timestamptz NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await queryRunner.query(
      'CREATE INDEX IF NOT EXISTS dedup_records_expires_at_idx ON dedup_records (expires_at)',
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP TABLE IF EXISTS dedup_records');
    await queryRunner.query('DROP SEQUENCE IF EXISTS dedup_fence_seq');
  }
}
