import { DataSource } from 'typeorm';

const ADMIN_URL = process.env.CHAOS_POSTGRES_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export function databaseUrl(name: string): string {
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Runs `work` on a small TypeORM DataSource (plain SQL only, no entities) connected to `url`. */
export async function withDatabase<T>(
  url: string,
  work: (db: DataSource) => Promise<T>,
  { poolSize = 2 }: { poolSize?: number } = {},
): Promise<T> {
  const db = new DataSource({ type: 'postgres', url, poolSize, applicationName: 'once-chaos' });
  await db.initialize();
  try {
    return await work(db);
  } finally {
    await db.destroy();
  }
}

const identifier = (name: string) => {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`unsafe database name "${name}"`);
  return `"${name}"`;
};

/** Drops (forcing other sessions off) and creates a database of the run's own; returns its URL. */
export async function recreateDatabase(name: string): Promise<string> {
  await withDatabase(ADMIN_URL, async (db) => {
    await db.query(`DROP DATABASE IF EXISTS ${identifier(name)} WITH (FORCE)`);
    await db.query(`CREATE DATABASE ${identifier(name)}`);
  });
  return databaseUrl(name);
}

export async function dropDatabase(name: string): Promise<void> {
  await withDatabase(ADMIN_URL, (db) => db.query(`DROP DATABASE IF EXISTS ${identifier(name)} WITH (FORCE)`));
}

/** True when `table` exists in the public schema. */
export async function tableExists(db: DataSource, table: string): Promise<boolean> {
  const rows: Array<{ present: boolean }> = await db.query('SELECT to_regclass($1) IS NOT NULL AS present', [
    `public.${table}`,
  ]);
  return rows[0]?.present === true;
}
