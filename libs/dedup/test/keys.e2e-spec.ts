import {
  type Message,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { Injectable } from '@nestjs/common';
import type { TestingModule } from '@nestjs/testing';
import { SqsMessageHandler } from '@ssut/nestjs-sqs';
import fc from 'fast-check';
import type Redis from 'ioredis';
import type { DataSource } from 'typeorm';
import {
  DEAD_LETTER_ATTRIBUTES,
  DedupMetrics,
  Idempotent,
  IdempotencyService,
  InvalidIdempotencyKeyError,
  validateIdempotencyKey,
  validateIdempotencyScope,
  type DedupStoreMode,
  type IdempotencyRecord,
} from '../src';
import {
  closeModule,
  consumerDefaults,
  createQueue,
  eventually,
  localSqs,
  openDataSource,
  openRedis,
  queueDepth,
  quietLogs,
  startModule,
  storeOptions,
} from './support/dedup.fixtures';

const seed = Number(process.env.FC_SEED ?? Math.floor(Math.random() * 2 ** 31));
console.log(`keys.e2e-spec: fast-check seed ${seed} (rerun with FC_SEED=${seed})`);

/** Bodies whose eventId no store may see, and the reason each dead-letters with. */
const INVALID: readonly { label: string; body: string; reason: RegExp }[] = [
  {
    label: 'eventId 2^53 + 1',
    body: '{"eventId": 9007199254740993}',
    reason:
      /eventId is 9007199254740993, which is not a safe integer \(read as 9007199254740992: .*send it as a string/,
  },
  { label: 'NUL', body: '{"eventId":"a\\u0000b"}', reason: /the key contains NUL \(U\+0000\) at index 1/ },
  { label: 'BEL', body: '{"eventId":"bell\\u0007"}', reason: /control character U\+0007 at index 4/ },
  { label: 'lone surrogate', body: '{"eventId":"x\\ud800"}', reason: /lone surrogate U\+D800 at index 1/ },
  {
    label: '513 bytes',
    body: JSON.stringify({ eventId: 'k'.repeat(513) }),
    reason: /the key is 513 bytes; at most 512/,
  },
  // 300 characters: the old character bound let it through, and both stores would have held it.
  { label: '600 bytes', body: JSON.stringify({ eventId: 'é'.repeat(300) }), reason: /the key is 600 bytes/ },
  {
    label: 'boolean',
    body: '{"eventId":true}',
    reason: /eventId is a boolean, not a string or a safe integer/,
  },
];

const handled: string[] = [];
const eventIdOf = (message: Message) =>
  String((JSON.parse(message.Body ?? '{}') as { eventId?: unknown }).eventId);

@Injectable()
class SingleKeysHandler {
  @SqsMessageHandler('keys-single', false)
  @Idempotent({ scope: 'keys-single' })
  async handle(message: Message): Promise<void> {
    handled.push(`single:${eventIdOf(message)}`);
  }
}

@Injectable()
class BatchKeysHandler {
  @SqsMessageHandler('keys-batch', true)
  @Idempotent({ scope: 'keys-batch' })
  async handle(messages: Message[]): Promise<Message[]> {
    handled.push(...messages.map((message) => `batch:${eventIdOf(message)}`));
    return messages;
  }
}

describe('idempotency keys: one validation at every entry point, exact round trips on real stores', () => {
  let sqs: SQSClient;
  let redis: Redis;
  let dataSource: DataSource;
  const modules: { moduleRef: TestingModule; sqs: boolean }[] = [];

  const start = async (
    store: DedupStoreMode,
    providers: unknown[] = [],
    consumers: Record<string, string> = {},
  ) => {
    const dedup = storeOptions(store, { redis, dataSource });
    const entries = Object.entries(consumers);
    const moduleRef = await startModule(
      dedup,
      providers as never[],
      entries.length
        ? {
            consumers: entries.map(([name, queueUrl]) => ({
              name,
              queueUrl,
              ...consumerDefaults(sqs),
              batchSize: 10,
            })),
          }
        : undefined,
    );
    modules.push({ moduleRef, sqs: entries.length > 0 });
    return { moduleRef, keyPrefix: dedup.keyPrefix as string };
  };

  /** Everything stored under a keyPrefix, in Redis and in Postgres (expired rows included). */
  const storedUnder = async (keyPrefix: string) => {
    const redisKeys: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(
        cursor,
        'MATCH',
        `${keyPrefix.replace(/[*?[\]\\]/g, '\\$&')}*`,
        'COUNT',
        1000,
      );
      cursor = next;
      // The fence counter is the store's own key, not a record.
      redisKeys.push(...keys.filter((key) => key !== `${keyPrefix}~fence`));
    } while (cursor !== '0');
    const rows = (await dataSource.query('SELECT key FROM dedup_records WHERE starts_with(key, $1)', [
      keyPrefix,
    ])) as { key: string }[];
    return { redis: redisKeys.sort(), postgres: rows.map((row) => row.key).sort() };
  };

  beforeAll(async () => {
    quietLogs();
    sqs = localSqs();
    redis = openRedis();
    dataSource = await openDataSource();
  });

  afterEach(async () => {
    for (const { moduleRef, sqs: consumes } of modules.splice(0))
      await (consumes ? closeModule(moduleRef) : moduleRef.close());
  });

  afterAll(async () => {
    sqs.destroy();
    await redis.quit();
    await dataSource.destroy();
  });

  it('the stores themselves would lose these keys: Postgres refuses NUL, both merge lone surrogates', async () => {
    await expect(dataSource.query('SELECT $1::text AS key', ['a\u0000b'])).rejects.toThrow(/0x00/);
    const [{ same }] = (await dataSource.query('SELECT $1::text = $2::text AS same', [
      'x\ud800',
      'x\udc00',
    ])) as {
      same: boolean;
    }[];
    expect(same).toBe(true);
    const probe = `${process.env.REDIS_KEY_PREFIX ?? 'once:test:'}keys-probe:${seed}:`;
    await redis.set(`${probe}x\ud800`, '1', 'PX', 10_000);
    expect(await redis.get(`${probe}x\udc00`)).toBe('1');
    await redis.set(`${probe}a\u0000b`, '1', 'PX', 10_000);
    expect(await redis.get(`${probe}a\u0000b`)).toBe('1'); // Redis alone would have accepted it
    await redis.del(`${probe}x\ud800`, `${probe}a\u0000b`);
  });

  it('dead-letters every message with an unusable eventId, with its reason, and never runs the handler (single and batch)', async () => {
    const [single, batch] = await Promise.all([
      createQueue(sqs, 'keys-single'),
      createQueue(sqs, 'keys-batch'),
    ]);
    const bodies = [...INVALID.map((entry) => entry.body), JSON.stringify({ eventId: 'ok-1' })];
    const sendAll = (url: string) =>
      sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: url,
          Entries: bodies.map((body, i) => ({ Id: String(i), MessageBody: body })),
        }),
      );
    await Promise.all([sendAll(single.url), sendAll(batch.url)]);
    handled.length = 0;
    const { moduleRef, keyPrefix } = await start('redis+postgres', [SingleKeysHandler, BatchKeysHandler], {
      'keys-single': single.url,
      'keys-batch': batch.url,
    });

    await eventually(
      'sources drained',
      async () => (await queueDepth(sqs, single.url)) + (await queueDepth(sqs, batch.url)) === 0,
      30_000,
    );
    expect(handled.sort()).toEqual(['batch:ok-1', 'single:ok-1']);
    expect(moduleRef.get(DedupMetrics).snapshot()['missing-key']).toBe(2 * INVALID.length);

    for (const dlqUrl of [single.dlqUrl, batch.dlqUrl]) {
      const dead: Message[] = [];
      await eventually('dead letters received', async () => {
        const { Messages } = await sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: dlqUrl,
            MaxNumberOfMessages: 10,
            MessageAttributeNames: ['All'],
            WaitTimeSeconds: 1,
          }),
        );
        dead.push(...(Messages ?? []));
        return dead.length >= INVALID.length;
      });
      expect(dead.map((message) => message.Body).sort()).toEqual(INVALID.map((entry) => entry.body).sort());
      for (const { body, reason } of INVALID) {
        const message = dead.find((candidate) => candidate.Body === body);
        const attribute = message?.MessageAttributes?.[DEAD_LETTER_ATTRIBUTES.reason]?.StringValue;
        expect(attribute).toMatch(/^(Missing|Invalid)IdempotencyKeyError: /);
        expect(attribute).toMatch(reason);
      }
    }
    // Only the valid key was ever claimed: nothing else reached a store.
    const stored = await storedUnder(keyPrefix);
    const expected = [`${keyPrefix}keys-batch:ok-1`, `${keyPrefix}keys-single:ok-1`];
    expect(stored).toEqual({ redis: expected, postgres: expected });
  });

  describe.each<DedupStoreMode>(['redis', 'postgres', 'redis+postgres'])(
    'IdempotencyService on store %s',
    (store) => {
      // Each would have been accepted by at least one store before: Redis holds NUL, both hold the rest.
      const refused: readonly [string, string][] = [
        ['NUL', 'a\u0000b'],
        ['a tab', 'a\tb'],
        ['a C1 control', 'next\u0085line'],
        ['a lone surrogate', 'x\ud800'],
        ['600 bytes in 300 characters', 'é'.repeat(300)],
        ['the empty key', ''],
      ];

      it.each(refused)(
        'refuses %s on every entry point, leaving nothing in any store',
        async (_label, key) => {
          const { moduleRef, keyPrefix } = await start(store);
          const idempotency = moduleRef.get(IdempotencyService);
          const scope = 'keys-service';
          let ran = 0;
          const calls: [string, () => Promise<unknown>][] = [
            ['run', () => idempotency.run(key, async () => ++ran, { scope })],
            [
              'run (transactional)',
              () => idempotency.run(key, async () => ++ran, { scope, transactional: true }),
            ],
            ['claim', () => idempotency.claim(key, { scope })],
            // The valid key in the same call is not claimed either: the whole call is refused up front.
            ['claimMany', () => idempotency.claimMany([{ key: 'valid-neighbour' }, { key }], { scope })],
            ['get', () => idempotency.get(key, { scope })],
            ['forget', () => idempotency.forget(key, { scope })],
          ];
          for (const [name, call] of calls) {
            if (name === 'run (transactional)' && store === 'redis') continue;
            const error = await call().then(
              () => new Error(`${name} accepted the key`),
              (caught: unknown) => caught,
            );
            expect([name, error]).toEqual([name, expect.any(InvalidIdempotencyKeyError)]);
            expect((error as InvalidIdempotencyKeyError).reason).toBe(validateIdempotencyKey(key));
          }
          expect(ran).toBe(0);
          expect(await storedUnder(keyPrefix)).toEqual({ redis: [], postgres: [] });
          expect(moduleRef.get(DedupMetrics).snapshot().claimed ?? 0).toBe(0);
        },
      );

      it('round-trips every accepted key and scope byte-exactly: claim, get, list, complete, forget (property)', async () => {
        const { moduleRef, keyPrefix } = await start(store);
        const idempotency = moduleRef.get(IdempotencyService);
        const seen = new Map<string, string>();
        const text = fc.oneof(
          fc.string({ unit: 'binary', minLength: 1, maxLength: 60 }),
          fc.string({ unit: 'grapheme', minLength: 1, maxLength: 30 }),
          fc.string({
            unit: fc.constantFrom('%', '_', '\\', '*', '?', '[', ']', ':', '\ufffd', '\ud83d\ude00', ' '),
            minLength: 1,
            maxLength: 10,
          }),
          fc.string({ unit: 'binary', minLength: 120, maxLength: 128 }), // up to 512 bytes
        );
        const scopeText = fc.oneof(
          fc.constantFrom('a', 'keys.round-trip'),
          fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }),
        );
        await fc.assert(
          fc.asyncProperty(scopeText, text, async (scope, key) => {
            fc.pre(
              validateIdempotencyScope(scope) === undefined && validateIdempotencyKey(key) === undefined,
            );
            fc.pre(!seen.has(`${scope}\u0000${key}`));
            seen.set(`${scope}\u0000${key}`, key);
            const claimed = await idempotency.claim(key, { scope, messageId: 'm-rt' });
            expect(claimed.status).toBe('claimed');
            if (claimed.status !== 'claimed') return;
            const expectRecord = (record: IdempotencyRecord | null | undefined, state: string) => {
              expect(record).toMatchObject({ scope, key, state });
              expect(Buffer.from(record?.key ?? '', 'utf8').equals(Buffer.from(key, 'utf8'))).toBe(true);
            };
            expectRecord(await idempotency.get(key, { scope }), 'IN_PROGRESS');
            await idempotency.complete(claimed.claim, { key });
            const done = await idempotency.get(key, { scope });
            expectRecord(done, 'COMPLETED');
            expect(done?.result).toEqual({ key });

            // list reads keys back from the store (Redis: SCAN bytes decoded), so this is the real round trip.
            const listed: IdempotencyRecord[] = [];
            let cursor: string | undefined;
            do {
              const page = await idempotency.list({ prefix: `${scope}:${key}`, limit: 100, cursor });
              listed.push(...page.items);
              cursor = page.nextCursor;
            } while (cursor);
            expectRecord(
              listed.find((record) => record.scope === scope && record.key === key),
              'COMPLETED',
            );
            expect(await idempotency.forget(key, { scope })).toBeTruthy();
            expect(await idempotency.get(key, { scope })).toBeNull();
          }),
          { seed, numRuns: 100, interruptAfterTimeLimit: 30_000 },
        );
        // Distinct pairs stayed distinct: every one of them was claimed fresh, and nothing is left.
        console.log(`keys.e2e-spec: ${store}: ${seen.size} distinct (scope, key) pairs round-tripped`);
        expect(seen.size).toBeGreaterThan(20);
        expect(await storedUnder(keyPrefix)).toEqual({ redis: [], postgres: [] });
      });
    },
  );
});
