import type { Logger } from '@nestjs/common';
import fc from 'fast-check';
import type { ClaimRequest, StoreClaimResult } from './dedup-store.interface';
import { LayeredStore } from './layered.store';
import type { PostgresStore } from './postgres.store';
import type { RedisStore } from './redis.store';

/** Fake layers that answer each key with the name of the layer that decided it. */
function layers() {
  const calls: { layer: string; op: string; keys: string[] }[] = [];
  const answer =
    (layer: string, op: string) =>
    async (items: readonly { storageKey: string }[]): Promise<StoreClaimResult[]> => {
      calls.push({ layer, op, keys: items.map((item) => item.storageKey) });
      return items.map(() => ({ status: 'claimed', fence: layer === 'redis' ? 1 : 2 }));
    };
  const redis = { claim: answer('redis', 'claim'), release: answer('redis', 'release') };
  const postgres = { claim: answer('postgres', 'claim'), release: answer('postgres', 'release') };
  return { redis: redis as unknown as RedisStore, postgres: postgres as unknown as PostgresStore, calls };
}

const logger = { warn: () => undefined } as unknown as Logger;
const request = (scope: string, key: string): ClaimRequest => ({
  storageKey: `p:${scope}:${key}`,
  scope,
  key,
});

describe('LayeredStore with redisOnlyScopes', () => {
  it('property: a mixed claim sends redis-only keys to Redis alone and answers in input order', async () => {
    const seed = Number(process.env.FC_SEED ?? Date.now() % 2 ** 31);
    console.log(`layered split property: FC_SEED=${seed}`);
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom('mail', 'mailer', 'other'), { minLength: 1, maxLength: 10 }),
        async (scopes) => {
          const { redis, postgres, calls } = layers();
          const store = new LayeredStore(redis, postgres, 'fail', logger, {
            keyPrefix: 'p:',
            scopes: ['mail'],
          });
          const requests = scopes.map((scope, i) => request(scope, `k${i}`));
          const results = await store.claim(requests, 't', 1000);
          // Redis-only keys got Redis's answer (fence 1); layered ones Postgres's (fence 2).
          expect(results.map((r) => (r.status === 'claimed' ? r.fence : 0))).toEqual(
            scopes.map((scope) => (scope === 'mail' ? 1 : 2)),
          );
          const onlyRedis = requests.filter((r) => r.scope === 'mail').map((r) => r.storageKey);
          const postgresKeys = calls.filter((c) => c.layer === 'postgres').flatMap((c) => c.keys);
          expect(postgresKeys.some((key) => onlyRedis.includes(key))).toBe(false);
          // `mailer` shares `mail`'s first letters, not its scope: it stays layered.
          expect(postgresKeys.length).toBe(requests.length - onlyRedis.length);
        },
      ),
      { seed, numRuns: 200 },
    );
  });
});
