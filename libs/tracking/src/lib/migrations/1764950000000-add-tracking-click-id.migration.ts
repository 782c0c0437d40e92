import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `click_id`: the id a click gets when it is recorded, unique, so a batch written twice (an INSERT
 * whose answer was lost, then spilled to Redis and drained; two api replicas draining one spill)
 * lands once. Rows from before have none.
 */
export class AddTrackingClickId1764950000000 implements MigrationInterface {
  name = 'AddTrackingClickId1764950000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('ALTER TABLE tracking_clicks ADD COLUMN IF NOT EXISTS click_id uuid');
    await queryRunner.query(
      'CREATE UNIQUE INDEX IF NOT EXISTS tracking_clicks_click_id_key ON tracking_clicks (click_id)',
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP INDEX IF EXISTS tracking_clicks_click_id_key');
    await queryRunner.query('ALTER TABLE tracking_clicks DROP COLUMN IF EXISTS click_id');
  }
}
