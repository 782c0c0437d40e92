import type { DataSource, EntityManager } from 'typeorm';

/**
 * Rows of a raw query. TypeORM's postgres driver returns `[rows, count]` for UPDATE/DELETE and
 * plain rows otherwise; this evens that out.
 */
export async function queryRows<T>(
  db: DataSource | EntityManager,
  sql: string,
  parameters: unknown[] = [],
): Promise<T[]> {
  const raw: unknown = await db.query(sql, parameters);
  if (Array.isArray(raw) && raw.length === 2 && Array.isArray(raw[0]) && typeof raw[1] === 'number') {
    return raw[0] as T[];
  }
  return Array.isArray(raw) ? (raw as T[]) : [];
}
