import type { DataSource } from 'typeorm';
import { SubscriptionReader } from './subscription.reader';

function fakeDataSource(users: Record<string, boolean>, fail = false) {
  const queries: unknown[][] = [];
  const findOne = jest.fn(async ({ where }: { where: { id: string } }) => {
    if (!/^\d+$/.test(where.id)) throw new Error(`invalid input syntax for type bigint: "${where.id}"`);
    return where.id in users ? { id: where.id, subscribed: users[where.id] } : null;
  });
  const dataSource = {
    query: jest.fn(async (_sql: string, params: unknown[]) => {
      queries.push(params);
      if (fail) throw new Error('connection lost');
      const ids = params[0] as string[];
      return ids.filter((id) => id in users).map((id) => ({ id, subscribed: users[id] }));
    }),
    getRepository: () => ({ findOne }),
  } as unknown as DataSource;
  return { dataSource, queries, findOne };
}

describe('SubscriptionReader', () => {
  it('reads the lookups of concurrent sends in one query and answers each its own user', async () => {
    const { dataSource, queries } = fakeDataSource({ '1': true, '2': false, '7': true });
    const reader = new SubscriptionReader(dataSource);
    const answers = await Promise.all(['1', '2', '3', '007', '1'].map((id) => reader.isSubscribed(id)));
    expect(answers).toEqual([true, false, false, true, true]);
    expect(queries).toEqual([[['1', '2', '3', '7', '1']]]);
    // No cache: a later send reads again.
    await reader.isSubscribed('1');
    expect(queries).toHaveLength(2);
  });

  it('looks up an id that is no bigint alone, so only its own send fails', async () => {
    const { dataSource, queries, findOne } = fakeDataSource({ '1': true });
    const reader = new SubscriptionReader(dataSource);
    const [ok, bad, huge] = await Promise.allSettled([
      reader.isSubscribed('1'),
      reader.isSubscribed('u-1'),
      reader.isSubscribed('99999999999999999999'),
    ]);
    expect(ok).toEqual({ status: 'fulfilled', value: true });
    expect(bad).toMatchObject({ status: 'rejected', reason: { message: expect.stringContaining('bigint') } });
    expect(huge.status).toBe('fulfilled');
    expect(queries).toEqual([[['1']]]);
    expect(findOne).toHaveBeenCalledTimes(2);
  });

  it('a failed query fails every send that waited on it (each is retried)', async () => {
    const { dataSource } = fakeDataSource({ '1': true }, true);
    const reader = new SubscriptionReader(dataSource);
    const results = await Promise.allSettled([reader.isSubscribed('1'), reader.isSubscribed('2')]);
    expect(results.map((result) => result.status)).toEqual(['rejected', 'rejected']);
  });
});
