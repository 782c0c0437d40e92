import { DataSource } from 'typeorm';

/** Inserts `count` demo users (user1@example.com …), leaving existing ones untouched. Returns how many exist. */
export async function seedUsers(dataSource: DataSource, count: number): Promise<number> {
  await dataSource.query(
    `INSERT INTO users (email, name)
     SELECT 'user' || n || '@example.com', 'User ' || n FROM generate_series(1, $1::int) AS n
     ON CONFLICT (email) DO NOTHING`,
    [count],
  );
  const [{ total }] = await dataSource.query('SELECT count(*)::int AS total FROM users');
  return total;
}
