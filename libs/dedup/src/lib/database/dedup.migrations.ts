import { DedupRecord } from './dedup-record.entity';
import { CreateDedupRecords1763910000000 } from './migrations/1763910000000-create-dedup-records.migration';

/** Entities and migrations the apps register for @once/dedup. */
export const DEDUP_ENTITIES = [DedupRecord];
export const DEDUP_MIGRATIONS = [CreateDedupRecords1763910000000];
