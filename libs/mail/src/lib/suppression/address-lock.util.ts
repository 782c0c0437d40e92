import { type DataSource, EntityManager } from 'typeorm';

/** Advisory lock class of suppression addresses ('mail' in ASCII): keeps them apart from other lock users. */
export const ADDRESS_LOCK_CLASS = 0x6d61696c;

/**
 * Takes the transaction-scoped advisory lock of each address key, in one statement and in lock-id
 * order (so two transactions locking overlapping sets cannot deadlock). A suppression takes them
 * `exclusive` before it inserts; a send's stamp before its SES call takes them `shared` before it
 * reads the suppression list. So a stamp that meets a suppression in progress waits for its commit
 * and then sees it, and a suppression waits for stamps in progress (those calls are then in flight).
 * Must run inside a transaction: the locks last until it ends.
 */
export async function lockAddressKeys(
  db: EntityManager,
  keys: readonly string[],
  mode: 'shared' | 'exclusive',
): Promise<void> {
  if (keys.length === 0) return;
  const lock = mode === 'shared' ? 'pg_advisory_xact_lock_shared' : 'pg_advisory_xact_lock';
  await db.query(
    `SELECT ${lock}(${ADDRESS_LOCK_CLASS}, id)::text
       FROM (SELECT DISTINCT hashtext(key) AS id FROM unnest($1::text[]) AS key ORDER BY 1) AS ids`,
    [keys],
  );
}

/** Runs `work` in `db`'s transaction if it is in one, else in a new transaction. */
export function inTransaction<T>(
  db: DataSource | EntityManager,
  work: (manager: EntityManager) => Promise<T>,
): Promise<T> {
  if (db instanceof EntityManager && db.queryRunner?.isTransactionActive) return work(db);
  return db instanceof EntityManager ? db.transaction(work) : db.transaction(work);
}
