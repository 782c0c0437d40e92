import { MigrationInterface, QueryRunner } from 'typeorm';

/** The fingerprint of the payload a record was made for (payload mismatch detection). */
export class AddDedupPayloadHash1764600000000 implements MigrationInterface {
  name = 'AddDedupPayloadHash1764600000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('ALTER TABLE dedup_records ADD COLUMN IF NOT EXISTS payload_hash text');
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('ALTER TABLE dedup_records DROP COLUMN IF EXISTS payload_hash');
  }
}
