/**
 * `@once/dedup/typeorm`: the TypeORM pieces of the Postgres store (the `dedup_records` entity and
 * its migrations). Kept out of the main entry so a Redis-only app never loads typeorm.
 */
export { DedupRecord } from './lib/database/dedup-record.entity';
export { DEDUP_ENTITIES, DEDUP_MIGRATIONS } from './lib/database/dedup.migrations';
