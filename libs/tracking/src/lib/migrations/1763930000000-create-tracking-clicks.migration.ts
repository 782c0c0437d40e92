import { MigrationInterface, QueryRunner } from 'typeorm';

export class CreateTrackingClicks1763930000000 implements MigrationInterface {
  name = 'CreateTrackingClicks1763930000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE IF NOT EXISTS tracking_clicks (
        id bigserial PRIMARY KEY,
        clicked_at timestamptz NOT NULL,
        path text NOT NULL,
        campaign text NOT NULL,
        recipient_id text,
        message_key text,
        content text,
        term text,
        user_agent_class varchar(32) NOT NULL,
        bot boolean NOT NULL,
        bot_reason varchar(32)
      )`);
    await queryRunner.query(
      'CREATE INDEX IF NOT EXISTS tracking_clicks_clicked_at_idx ON tracking_clicks (clicked_at)',
    );
    await queryRunner.query(
      'CREATE INDEX IF NOT EXISTS tracking_clicks_campaign_clicked_at_idx ON tracking_clicks (campaign, clicked_at)',
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP TABLE IF EXISTS tracking_clicks');
  }
}
