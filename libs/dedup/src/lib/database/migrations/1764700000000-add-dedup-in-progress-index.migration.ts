import { MigrationInterface, QueryRunner } from 'typeorm';

/** The partial index of IN_PROGRESS keys (see {@link AddDedupInProgressIndex1764700000000}). */
export const DEDUP_IN_PROGRESS_INDEX = 'dedup_records_in_progress_key_idx';

/**
 * A partial index of the IN_PROGRESS keys, in key order: the admin list filtered by
 * `state=IN_PROGRESS` reads it instead of walking the primary key through every COMPLETED row
 * (seconds on a table of millions, where live claims are a few hundred). It holds only the keys
 * being worked on, so it stays small and a completion (state → COMPLETED) adds nothing to it.
 *
 * Inside a transaction (TypeORM's default) the build holds a SHARE lock: claims and completions
 * wait while it reads the table (one sequential scan). Run outside one (`transaction: 'none'`), it
 * builds CONCURRENTLY; an index an interrupted concurrent build left invalid is rebuilt. Creating
 * the index yourself beforehand makes this migration a no-op.
 */
export class AddDedupInProgressIndex1764700000000 implements MigrationInterface {
  name = 'AddDedupInProgressIndex1764700000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const concurrently = queryRunner.isTransactionActive ? '' : ' CONCURRENTLY';
    const [existing] = (await queryRunner.query(
      'SELECT indisvalid AS valid FROM pg_index WHERE indexrelid = to_regclass($1)',
      [DEDUP_IN_PROGRESS_INDEX],
    )) as { valid: boolean }[];
    if (existing && !existing.valid)
      await queryRunner.query(`DROP INDEX${concurrently} IF EXISTS ${DEDUP_IN_PROGRESS_INDEX}`);
    await queryRunner.query(
      `CREATE INDEX${concurrently} IF NOT EXISTS ${DEDUP_IN_PROGRESS_INDEX}
       ON dedup_records (key) WHERE state = 'IN_PROGRESS'`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX IF EXISTS ${DEDUP_IN_PROGRESS_INDEX}`);
  }
}
