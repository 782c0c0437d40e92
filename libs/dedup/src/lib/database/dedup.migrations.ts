import { DedupRecord } from './dedup-record.entity';
import { CreateDedupRecords1763910000000 } from './migrations/1763910000000-create-dedup-records.migration';
import { AddDedupPayloadHash1764600000000 } from './migrations/1764600000000-add-dedup-payload-hash.migration';
import { AddDedupInProgressIndex1764700000000 } from './migrations/1764700000000-add-dedup-in-progress-index.migration';

/** Entities and migrations the apps register for @once/dedup. */
export const DEDUP_ENTITIES = [DedupRecord];
export const DEDUP_MIGRATIONS = [
  CreateDedupRecords1763910000000,
  AddDedupPayloadHash1764600000000,
  AddDedupInProgressIndex1764700000000,
];
