import type { Message } from '@aws-sdk/client-sqs';
import fc from 'fast-check';
import { Logger } from '@nestjs/common';
import { DedupMetrics, type DedupMetricEvent } from '../dedup-metrics.service';
import { DuplicateInFlightError, MissingIdempotencyKeyError, RetryAfterError } from '../dedup.errors';
import { retryLater } from '../retry-later';
import type { IdempotencyContext } from '../dedup.types';
import type { DedupSettings, HandlerSettings } from '../engine/dedup.settings';
import { DedupEngine } from '../engine/idempotency.engine';
import { MemoryStore } from '../stores/memory.store';
import {
  duplicateCause,
  IdempotentHandlerRunner,
  inFlightDeferral,
  type IdempotentCall,
} from './idempotent-handler.runner';
import {
  DEFERRED_FROM_ATTRIBUTE,
  type DeferralTarget,
  RETRY_DEFERRALS_ATTRIBUTE,
  type SqsQueueOps,
} from './sqs-queue.ops';

const msg = (id: string, eventId?: string, receiveCount?: number): Message => ({
  MessageId: id,
  ReceiptHandle: `rh-${id}`,
  Body: JSON.stringify(eventId === undefined ? { other: 1 } : { eventId }),
  ...(receiveCount === undefined ? {} : { Attributes: { ApproximateReceiveCount: String(receiveCount) } }),
});

/** Listens to a fresh DedupMetrics and keeps the duplicate events. */
function duplicateEvents() {
  const metrics = new DedupMetrics();
  const events: DedupMetricEvent[] = [];
  metrics.addListener((event) => {
    if (event.counter.startsWith('duplicate-')) events.push(event);
  });
  return { metrics, events };
}

const KEY_PREFIX = 't:';
const SCOPES = ['Emails.handle', 'Jobs.handle'];
/** The store's clock stands still: seeded leases never lapse, retryAfterMs is exact. */
const NOW = Date.UTC(2030, 0, 1);
const HOLDER_LEASE_MS = 2500;

/**
 * The real engine over a MemoryStore. Keys listed in `completed` / `inFlight` are seeded as
 * completed records / live claims of another owner in every scope the tests use; everything else
 * is fresh. `executed` lists the keys of every claim round trip, `reads` every record read.
 */
function engineWith(
  state: {
    completed?: string[];
    inFlight?: string[];
    /** The engine's metrics (it counts duplicates itself unless the caller does). */
    metrics?: DedupMetrics;
    /** MessageId of each completed key's record. */
    records?: Record<string, string | null>;
    /** The lease of the runs (a short one lets a heartbeat beat while the handler waits). */
    leaseMs?: number;
  } = {},
) {
  const store = new MemoryStore({
    now: () => NOW,
    manager: { fake: 'manager' } as unknown as IdempotencyContext['manager'],
  });
  // MemoryStore applies writes synchronously: the seed is in place when these calls return.
  for (const scope of SCOPES) {
    const request = (key: string) => ({
      storageKey: `${KEY_PREFIX}${scope}:${key}`,
      scope,
      key,
      messageId: state.records?.[key] ?? undefined,
    });
    for (const key of state.inFlight ?? []) void store.claim([request(key)], 'holder', HOLDER_LEASE_MS);
    for (const key of state.completed ?? [])
      void store.complete([{ ...request(key), token: 'holder' }], 60_000);
  }
  const executed: string[][] = [];
  const reads: string[] = [];
  const claim = store.claim.bind(store);
  const get = store.get.bind(store);
  store.claim = (requests, ...rest) => (executed.push(requests.map((r) => r.key)), claim(requests, ...rest));
  store.get = (storageKey) => (reads.push(storageKey.slice(KEY_PREFIX.length)), get(storageKey));
  const settings = {
    runs: {
      storeMode: 'postgres',
      keyPrefix: KEY_PREFIX,
      leaseMs: state.leaseMs ?? 4_000,
      ttlMs: 60_000,
      onPayloadMismatch: 'warn',
    },
  } as DedupSettings;
  const engine = new DedupEngine(store, settings, state.metrics ?? new DedupMetrics());
  return { engine, executed, reads };
}

/**
 * A fake SqsQueueOps. `target`: what deferralTarget answers (default: not an SQS consumer, so
 * in-flight duplicates only get a visibility change); `resendFails`: MessageIds whose copy fails.
 */
function fakeQueue(
  deadLetterWorks = true,
  deferral: { target?: DeferralTarget; resendFails?: string[] } = {},
) {
  const visibility: { ids: (string | undefined)[]; seconds: number }[] = [];
  const deadLettered: string[] = [];
  const resent: { ids: (string | undefined)[]; seconds: number; retryDeferrals?: number }[] = [];
  const deleted: (string | undefined)[] = [];
  const ops = {
    deleteSettled: async (_consumer: string, messages: readonly Message[]) => {
      deleted.push(...messages.map((m) => m.MessageId));
    },
    deferralTarget: async () => deferral.target,
    resend: async (
      _consumer: string,
      messages: readonly Message[],
      seconds: number,
      retryDeferrals?: number,
    ) => {
      resent.push({
        ids: messages.map((m) => m.MessageId),
        seconds,
        ...(retryDeferrals === undefined ? {} : { retryDeferrals }),
      });
      return new Set(messages.filter((m) => !deferral.resendFails?.includes(m.MessageId ?? '')));
    },
    changeVisibility: async (_consumer: string, messages: readonly Message[], seconds: number) => {
      visibility.push({ ids: messages.map((m) => m.MessageId), seconds });
    },
    deadLetter: async (_consumer: string, entries: readonly { message: Message; reason: string }[]) => {
      if (!deadLetterWorks) return new Set<Message>();
      deadLettered.push(...entries.map((e) => `${e.message.MessageId}: ${e.reason}`));
      return new Set(entries.map((e) => e.message));
    },
  };
  return { ops: ops as unknown as SqsQueueOps, visibility, deadLettered, resent, deleted };
}

/** A standard queue with a DLQ after 3 receives, whose consumer receives all message attributes. */
const standardQueue: DeferralTarget = { fifo: false, maxReceiveCount: 3, copiesAttributes: true };

const options = (overrides: Partial<HandlerSettings> = {}): HandlerSettings => ({
  enabled: true,
  manageVisibility: true,
  missingKey: 'dead-letter',
  maxRetryDeferrals: 10,
  ...overrides,
});

const batchCall = (messages: Message[], original: (...args: unknown[]) => unknown): IdempotentCall => ({
  spec: { scope: 'Emails.handle' },
  handler: { name: 'emails', batch: true },
  thisArg: undefined,
  original,
  args: [messages],
});

beforeAll(() => Logger.overrideLogger(false));

describe('IdempotentHandlerRunner, batch handlers', () => {
  it('hands fresh leaders to the handler and acknowledges completed, fresh-acked, followers and dead-lettered', async () => {
    const { engine, executed } = engineWith({ completed: ['done'], inFlight: ['busy'] });
    const queue = fakeQueue();
    const runner = new IdempotentHandlerRunner(engine, queue.ops, new DedupMetrics(), options());
    const [a1, b1, a2, done1, busy1, nokey, nack1, b2] = [
      msg('1', 'a'),
      msg('2', 'b'),
      msg('3', 'a'),
      msg('4', 'done'),
      msg('5', 'busy'),
      msg('6'),
      msg('7', 'nack'),
      msg('2', 'b'),
    ];
    const seen: Message[][] = [];

    const acked = await runner.invoke(
      batchCall([a1, b1, a2, done1, busy1, nokey, nack1, b2] as Message[], async (messages) => {
        seen.push(messages as Message[]);
        return (messages as Message[]).filter((m) => m !== nack1);
      }),
    );

    expect(executed).toEqual([['a', 'b', 'done', 'busy', 'nack']]);
    expect(seen).toEqual([[a1, b1, nack1]]);
    // b2 repeats b1's MessageId: listed once.
    expect(acked).toEqual([a1, a2, b1, done1, nokey]);
    expect(queue.visibility).toEqual([{ ids: ['5'], seconds: 4 }]);
    expect(queue.deadLettered).toEqual(['6: MissingIdempotencyKeyError: the JSON body has no "eventId"']);
  });

  it('returns an explicit empty list (acknowledge nothing) when every message is in flight', async () => {
    const { engine } = engineWith({ inFlight: ['a', 'b'] });
    const runner = new IdempotentHandlerRunner(engine, fakeQueue().ops, new DedupMetrics(), options());
    const handler = jest.fn();

    await expect(runner.invoke(batchCall([msg('1', 'a'), msg('2', 'b')], handler))).resolves.toEqual([]);
    expect(handler).not.toHaveBeenCalled();
  });

  it('keeps keyless messages for SQS redrive when they cannot be dead-lettered', async () => {
    const { engine } = engineWith();
    const runner = new IdempotentHandlerRunner(engine, fakeQueue(false).ops, new DedupMetrics(), options());
    const fresh = msg('1', 'a');

    await expect(runner.invoke(batchCall([fresh, msg('2')], async () => undefined))).resolves.toEqual([
      fresh,
    ]);
  });

  it('rethrows a handler failure without dead-lettering anything (the whole batch comes back)', async () => {
    const { engine } = engineWith();
    const queue = fakeQueue();
    const runner = new IdempotentHandlerRunner(engine, queue.ops, new DedupMetrics(), options());

    await expect(
      runner.invoke(
        batchCall([msg('1', 'a'), msg('2')], async () => {
          throw new Error('SES down');
        }),
      ),
    ).rejects.toThrow('SES down');
    expect(queue.deadLettered).toEqual([]);
  });

  it('passes the transaction manager as the extra last argument in transactional mode', async () => {
    const { engine } = engineWith();
    const runner = new IdempotentHandlerRunner(engine, fakeQueue().ops, new DedupMetrics(), options());
    const args: unknown[][] = [];

    await runner.invoke({
      ...batchCall([msg('1', 'a')], async (...received) => void args.push(received)),
      spec: { scope: 'Emails.handle', transactional: true },
    });

    expect(args[0]?.[1]).toEqual({ fake: 'manager' });
  });
});

describe('IdempotentHandlerRunner, single handlers', () => {
  const singleCall = (
    message: Message,
    original: (...args: unknown[]) => unknown = async () => 'handled',
  ) => ({
    spec: { scope: 'Jobs.handle' },
    handler: { name: 'jobs', batch: false },
    thisArg: undefined,
    original,
    args: [message],
  });

  it('returns the handler result when fresh and undefined (acknowledge) for a completed duplicate', async () => {
    const runner = new IdempotentHandlerRunner(
      engineWith({ completed: ['old'] }).engine,
      fakeQueue().ops,
      new DedupMetrics(),
      options(),
    );
    await expect(runner.invoke(singleCall(msg('1', 'new')))).resolves.toBe('handled');
    await expect(runner.invoke(singleCall(msg('2', 'old')))).resolves.toBeUndefined();
  });

  it('throws DuplicateInFlightError for an in-flight duplicate and defers it past the lease', async () => {
    const queue = fakeQueue();
    const runner = new IdempotentHandlerRunner(
      engineWith({ inFlight: ['busy'] }).engine,
      queue.ops,
      new DedupMetrics(),
      options(),
    );

    await expect(runner.invoke(singleCall(msg('1', 'busy')))).rejects.toBeInstanceOf(DuplicateInFlightError);
    expect(queue.visibility).toEqual([{ ids: ['1'], seconds: 4 }]);
  });

  it('dead-letters a keyless message (acknowledged), or throws when it cannot or policy says throw', async () => {
    const metrics = new DedupMetrics();
    const handler = jest.fn();
    const deadLettering = new IdempotentHandlerRunner(
      engineWith().engine,
      fakeQueue().ops,
      metrics,
      options(),
    );
    await expect(deadLettering.invoke(singleCall(msg('1'), handler))).resolves.toBeUndefined();

    const noDlq = new IdempotentHandlerRunner(engineWith().engine, fakeQueue(false).ops, metrics, options());
    await expect(noDlq.invoke(singleCall(msg('2'), handler))).rejects.toBeInstanceOf(
      MissingIdempotencyKeyError,
    );

    const queue = fakeQueue();
    const throwing = new IdempotentHandlerRunner(
      engineWith().engine,
      queue.ops,
      metrics,
      options({ missingKey: 'throw' }),
    );
    await expect(throwing.invoke(singleCall(msg('3'), handler))).rejects.toBeInstanceOf(
      MissingIdempotencyKeyError,
    );
    expect(queue.deadLettered).toEqual([]);

    expect(handler).not.toHaveBeenCalled();
    expect(metrics.snapshot()['missing-key']).toBe(3);
  });
});

describe('IdempotentHandlerRunner, duplicate causes', () => {
  const singleCall = (
    message: Message,
    original: (...args: unknown[]) => unknown = async () => 'handled',
  ) => ({
    spec: { scope: 'Emails.handle' },
    handler: { name: 'emails', batch: false },
    thisArg: undefined,
    original,
    args: [message],
  });

  it("replaces the store's duplicate count with one carrying the cause: receive count > 1 is a redelivery", async () => {
    const { metrics, events } = duplicateEvents();
    const { engine, reads } = engineWith({ completed: ['done'], inFlight: ['busy'], metrics });
    const runner = new IdempotentHandlerRunner(engine, fakeQueue().ops, metrics, options());

    await runner.invoke(singleCall(msg('m1', 'done', 2)));
    await runner.invoke(singleCall(msg('m2', 'done', 1)));
    await expect(runner.invoke(singleCall(msg('m3', 'busy', 1)))).rejects.toBeInstanceOf(
      DuplicateInFlightError,
    );

    expect(events).toEqual([
      { counter: 'duplicate-completed', by: 1, scope: 'Emails.handle', cause: 'redelivery', messageId: 'm1' },
      {
        counter: 'duplicate-completed',
        by: 1,
        scope: 'Emails.handle',
        cause: 'producer-duplicate',
        messageId: 'm2',
      },
      {
        counter: 'duplicate-in-flight',
        by: 1,
        scope: 'Emails.handle',
        cause: 'producer-duplicate',
        messageId: 'm3',
      },
    ]);
    expect(metrics.snapshot()).toMatchObject({ 'duplicate-completed': 2, 'duplicate-in-flight': 1 });
    expect(reads).toEqual([]);
  });

  it("without a receive count, compares the MessageId with the record's", async () => {
    const { metrics, events } = duplicateEvents();
    const { engine, reads } = engineWith({
      completed: ['a', 'b', 'c'],
      records: { a: 'm1', b: 'other', c: null },
      metrics,
    });
    const runner = new IdempotentHandlerRunner(engine, fakeQueue().ops, metrics, options());

    await runner.invoke(singleCall(msg('m1', 'a')));
    await runner.invoke(singleCall(msg('m2', 'b')));
    await runner.invoke(singleCall(msg('m3', 'c')));

    expect(events.map((event) => [event.messageId, event.cause])).toEqual([
      ['m1', 'redelivery'],
      ['m2', 'producer-duplicate'],
      ['m3', 'producer-duplicate'],
    ]);
    expect(reads).toEqual(['Emails.handle:a', 'Emails.handle:b', 'Emails.handle:c']);
  });

  it('counts in-batch duplicates: the same MessageId twice is a redelivery, another message a producer duplicate', async () => {
    const { metrics, events } = duplicateEvents();
    const { engine } = engineWith({ completed: ['done'], metrics });
    const runner = new IdempotentHandlerRunner(engine, fakeQueue().ops, metrics, options());
    const call = {
      ...batchCall(
        [msg('1', 'a', 1), msg('1', 'a', 1), msg('2', 'a', 1), msg('3', 'done', 3), msg('4', 'done', 1)],
        async () => undefined,
      ),
      spec: { scope: 'Emails.handle' },
    };

    await runner.invoke(call);

    expect(events.map((event) => [event.counter, event.messageId, event.cause])).toEqual([
      ['duplicate-completed', '1', 'redelivery'],
      ['duplicate-completed', '2', 'producer-duplicate'],
      ['duplicate-completed', '3', 'redelivery'],
      ['duplicate-completed', '4', 'producer-duplicate'],
    ]);
    expect(metrics.snapshot()['duplicate-completed']).toBe(4);
  });

  it('counts neither the followers of a failed leader nor, twice, what the handler itself counts', async () => {
    const { metrics, events } = duplicateEvents();
    const { engine } = engineWith({ metrics });
    const runner = new IdempotentHandlerRunner(engine, fakeQueue().ops, metrics, options());

    await runner.invoke({
      ...batchCall([msg('1', 'a', 1), msg('2', 'a', 1)], async () => {
        metrics.increment('duplicate-completed', { scope: 'Nested.run' });
        return [];
      }),
      spec: { scope: 'Emails.handle' },
    });

    expect(events).toEqual([{ counter: 'duplicate-completed', by: 1, scope: 'Nested.run' }]);
  });

  it('derives the cause from the receive count first, then the record', () => {
    expect(duplicateCause(msg('m', 'k', 2), 'other')).toBe('redelivery');
    expect(duplicateCause(msg('m', 'k', 1), undefined)).toBe('producer-duplicate');
    expect(duplicateCause(msg('m', 'k'), 'm')).toBe('redelivery');
    expect(duplicateCause(msg('m', 'k'), null)).toBe('producer-duplicate');
    expect(duplicateCause(msg('m', 'k'), undefined)).toBeUndefined();
  });
});

const seed = Number(process.env.FC_SEED ?? Math.floor(Math.random() * 2 ** 31));
console.log(`idempotent-handler.runner.spec: fast-check seed ${seed} (rerun with FC_SEED=${seed})`);

describe('inFlightDeferral: an in-flight duplicate never spends the receives its redrive policy allows', () => {
  it('re-sends a copy whenever receives can dead-letter, also when the policy could not be read', () => {
    expect(inFlightDeferral(standardQueue)).toBe('resend');
    expect(inFlightDeferral({ ...standardQueue, maxReceiveCount: 10 })).toBe('resend');
    expect(inFlightDeferral({ ...standardQueue, maxReceiveCount: undefined })).toBe('resend');
  });

  it('keeps the message where a copy cannot stand in for it, or receives never dead-letter', () => {
    expect(inFlightDeferral({ ...standardQueue, fifo: true })).toBe('visibility');
    expect(inFlightDeferral({ ...standardQueue, copiesAttributes: false })).toBe('visibility');
    expect(inFlightDeferral({ ...standardQueue, maxReceiveCount: null })).toBe('visibility');
  });

  it('property: however often a standard-queue duplicate is deferred, it spends no receive', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 25 }),
        fc.integer({ min: 1, max: 60 }),
        (maxReceiveCount, firstCount, deferrals) => {
          fc.pre(firstCount <= maxReceiveCount); // SQS never hands over a receive past the limit
          const target = { ...standardQueue, maxReceiveCount };
          let count = firstCount;
          for (let i = 0; i < deferrals; i += 1) {
            // A visibility change brings the same message back one receive later; a copy starts at 1.
            count = inFlightDeferral(target) === 'visibility' ? count + 1 : 1;
            if (count > 1) return false;
          }
          return true;
        },
      ),
      { seed, numRuns: 2000 },
    );
  });
});

describe('IdempotentHandlerRunner, deferring in-flight duplicates', () => {
  const singleCall = (message: Message): IdempotentCall => ({
    spec: { scope: 'Jobs.handle' },
    handler: { name: 'jobs', batch: false },
    thisArg: undefined,
    original: async () => 'handled',
    args: [message],
  });
  const runnerWith = (queue: ReturnType<typeof fakeQueue>, overrides: Partial<HandlerSettings> = {}) =>
    new IdempotentHandlerRunner(
      engineWith({ inFlight: ['busy'] }).engine,
      queue.ops,
      new DedupMetrics(),
      options(overrides),
    );

  it('single: a copy re-sent with the deferral as its delay lets the original be acknowledged (no error)', async () => {
    const queue = fakeQueue(true, { target: standardQueue });
    await expect(runnerWith(queue).invoke(singleCall(msg('1', 'busy', 2)))).resolves.toBeUndefined();
    expect(queue.resent).toEqual([{ ids: ['1'], seconds: 4 }]);
    expect(queue.visibility).toEqual([]);
  });

  it('single: a copy that could not be sent falls back to the visibility change, and the message is kept', async () => {
    const queue = fakeQueue(true, { target: standardQueue, resendFails: ['1'] });
    await expect(runnerWith(queue).invoke(singleCall(msg('1', 'busy', 2)))).rejects.toBeInstanceOf(
      DuplicateInFlightError,
    );
    expect(queue.resent).toEqual([{ ids: ['1'], seconds: 4 }]);
    expect(queue.visibility).toEqual([{ ids: ['1'], seconds: 4 }]);
  });

  it('single: without a redrive policy only the visibility changes (same message, no copy)', async () => {
    const queue = fakeQueue(true, { target: { ...standardQueue, maxReceiveCount: null } });
    await expect(runnerWith(queue).invoke(singleCall(msg('1', 'busy', 1)))).rejects.toBeInstanceOf(
      DuplicateInFlightError,
    );
    expect(queue.resent).toEqual([]);
    expect(queue.visibility).toEqual([{ ids: ['1'], seconds: 4 }]);
  });

  it('does neither with manageVisibility off', async () => {
    const queue = fakeQueue(true, { target: standardQueue });
    await expect(
      runnerWith(queue, { manageVisibility: false }).invoke(singleCall(msg('1', 'busy', 3))),
    ).rejects.toBeInstanceOf(DuplicateInFlightError);
    expect(queue.resent).toEqual([]);
    expect(queue.visibility).toEqual([]);
  });

  it('batch: acknowledges the re-sent in-flight duplicates only; the rest keep a visibility change', async () => {
    const queue = fakeQueue(true, { target: standardQueue, resendFails: ['3'] });
    const handler = jest.fn(async () => undefined);
    const acked = await runnerWith(queue).invoke(
      batchCall([msg('1', 'busy', 1), msg('2', 'busy', 2), msg('3', 'busy'), msg('4', 'fresh', 1)], handler),
    );
    expect(queue.resent).toEqual([{ ids: ['1', '2', '3'], seconds: 4 }]);
    expect(queue.visibility).toEqual([{ ids: ['3'], seconds: 4 }]);
    expect((acked as Message[]).map((m) => m.MessageId).sort()).toEqual(['1', '2', '4']);
  });

  it('a handler that throws RetryAfterError is deferred like an in-flight duplicate, spending no receive', async () => {
    const later = (message: Message): IdempotentCall => ({
      ...singleCall(message),
      original: async () => {
        throw new RetryAfterError('not yet', 2500);
      },
    });
    const runner = (queue: ReturnType<typeof fakeQueue>) =>
      new IdempotentHandlerRunner(engineWith().engine, queue.ops, new DedupMetrics(), options());

    const withRedrive = fakeQueue(true, { target: standardQueue });
    await expect(runner(withRedrive).invoke(later(msg('1', 'fresh', 4)))).resolves.toBeUndefined();
    expect(withRedrive.resent).toEqual([{ ids: ['1'], seconds: 4, retryDeferrals: 1 }]);

    const noRedrive = fakeQueue(true, { target: { ...standardQueue, maxReceiveCount: null } });
    await expect(runner(noRedrive).invoke(later(msg('2', 'fresh', 1)))).rejects.toBeInstanceOf(
      RetryAfterError,
    );
    expect(noRedrive.visibility).toEqual([{ ids: ['2'], seconds: 4 }]);

    const plainError = fakeQueue(true, { target: standardQueue });
    await expect(
      runner(plainError).invoke({
        ...singleCall(msg('3', 'fresh', 1)),
        original: async () => {
          throw new RetryAfterError('when the queue says');
        },
      }),
    ).rejects.toBeInstanceOf(RetryAfterError);
    expect(plainError.resent).toEqual([]);
    expect(plainError.visibility).toEqual([]);
  });

  it('batch: a message the handler leaves out with retryLater is deferred by a counted copy (and its in-batch repeats ride on it)', async () => {
    const queue = fakeQueue(true, { target: standardQueue });
    const runner = new IdempotentHandlerRunner(engineWith().engine, queue.ops, new DedupMetrics(), options());
    const [later, repeat, done, failed] = [
      msg('1', 'later', 1),
      msg('2', 'later', 1),
      msg('3', 'done', 1),
      msg('4', 'failed', 1),
    ];
    const acked = await runner.invoke(
      batchCall([later, repeat, done, failed], async (leaders) => {
        expect((leaders as Message[]).map((m) => m.MessageId)).toEqual(['1', '3', '4']);
        retryLater(later, 2500);
        return [done];
      }),
    );
    expect(queue.resent).toEqual([{ ids: ['1'], seconds: 4, retryDeferrals: 1 }]);
    expect((acked as Message[]).map((m) => m.MessageId).sort()).toEqual(['1', '2', '3']);
    // The key was released: the copy runs again.
    const again = await runner.invoke(batchCall([msg('5', 'later', 1)], async () => undefined));
    expect((again as Message[]).map((m) => m.MessageId)).toEqual(['5']);

    // Deferrals used up: a visibility change, and the message and its repeat are kept.
    const used = fakeQueue(true, { target: standardQueue });
    const counted: Message = {
      ...msg('6', 'spent', 1),
      MessageAttributes: { [RETRY_DEFERRALS_ATTRIBUTE]: { DataType: 'Number', StringValue: '10' } },
    };
    const kept = await new IdempotentHandlerRunner(
      engineWith().engine,
      used.ops,
      new DedupMetrics(),
      options(),
    ).invoke(
      batchCall([counted, msg('7', 'spent', 1)], async () => {
        retryLater(counted, 1500);
        return [];
      }),
    );
    expect(used.resent).toEqual([]);
    expect(used.visibility).toEqual([{ ids: ['6'], seconds: 3 }]);
    expect(kept).toEqual([]);
  });

  it('retries spare receives only maxRetryDeferrals times: then each one spends a receive, so redrive ends the loop', async () => {
    const asking = (message: Message): IdempotentCall => ({
      ...singleCall(message),
      original: async () => {
        throw new RetryAfterError('SES is down', 1500);
      },
    });
    const counted = (id: string, retryDeferrals: string, receiveCount = 1): Message => ({
      ...msg(id, 'fresh', receiveCount),
      MessageAttributes: { [RETRY_DEFERRALS_ATTRIBUTE]: { DataType: 'Number', StringValue: retryDeferrals } },
    });
    const queue = fakeQueue(true, { target: standardQueue });
    const runner = new IdempotentHandlerRunner(
      engineWith().engine,
      queue.ops,
      new DedupMetrics(),
      options({ maxRetryDeferrals: 3 }),
    );

    await expect(runner.invoke(asking(counted('1', '2')))).resolves.toBeUndefined();
    await expect(runner.invoke(asking(counted('2', '3')))).rejects.toBeInstanceOf(RetryAfterError);
    await expect(runner.invoke(asking(counted('3', 'x')))).resolves.toBeUndefined();
    expect(queue.resent).toEqual([
      { ids: ['1'], seconds: 3, retryDeferrals: 3 },
      { ids: ['3'], seconds: 3, retryDeferrals: 1 },
    ]);
    expect(queue.visibility).toEqual([{ ids: ['2'], seconds: 3 }]);

    const none = fakeQueue(true, { target: standardQueue });
    await expect(
      new IdempotentHandlerRunner(
        engineWith().engine,
        none.ops,
        new DedupMetrics(),
        options({ maxRetryDeferrals: 0 }),
      ).invoke(asking(msg('4', 'fresh', 1))),
    ).rejects.toBeInstanceOf(RetryAfterError);
    expect(none.resent).toEqual([]);
    expect(none.visibility).toEqual([{ ids: ['4'], seconds: 3 }]);
  });

  it('property: a message that always asks to retry ends in the DLQ after a bounded number of handler calls', async () => {
    const seed = Number(process.env.FC_SEED ?? Date.now() % 2 ** 31);
    console.log(`retry-deferral property seed ${seed}`);
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 6 }),
        fc.integer({ min: 1, max: 6 }),
        fc.array(fc.boolean(), { minLength: 40, maxLength: 40 }),
        async (maxRetryDeferrals, maxReceiveCount, resendFails) => {
          let handled = 0;
          // A little SQS: the message as received, with its receive count; a copy starts at 0.
          let current: Message | undefined = msg('m0', 'fresh', 1);
          let copies = 0;
          let inDlq = false;
          const attempt = { n: 0 };
          const queue = {
            deferralTarget: async () => ({ ...standardQueue, maxReceiveCount }),
            resend: async (_c: string, messages: readonly Message[], _s: number, retryDeferrals?: number) => {
              if (resendFails[attempt.n % resendFails.length]) return new Set<Message>();
              const [original] = messages;
              copies += 1;
              current = {
                ...msg(`m${copies}`, 'fresh', 1),
                MessageAttributes: {
                  ...original?.MessageAttributes,
                  [RETRY_DEFERRALS_ATTRIBUTE]: { DataType: 'Number', StringValue: String(retryDeferrals) },
                },
              };
              return new Set(messages);
            },
            changeVisibility: async () => undefined,
            deleteSettled: async () => undefined,
            deadLetter: async () => new Set<Message>(),
          } as unknown as SqsQueueOps;
          const runner = new IdempotentHandlerRunner(
            engineWith().engine,
            queue,
            new DedupMetrics(),
            options({ maxRetryDeferrals }),
          );
          while (current && !inDlq && handled < 1000) {
            const message: Message = current;
            attempt.n += 1;
            const kept = await runner
              .invoke({
                ...singleCall(message),
                original: async () => {
                  handled += 1;
                  throw new RetryAfterError('down', 1000);
                },
              })
              .then(
                () => false,
                () => true,
              );
            if (!kept) continue; // acknowledged: its copy (now `current`) stands in for it
            const receives = Number(message.Attributes?.ApproximateReceiveCount);
            if (receives >= maxReceiveCount) inDlq = true;
            else current = { ...message, Attributes: { ApproximateReceiveCount: String(receives + 1) } };
          }
          expect(inDlq).toBe(true);
          // Every resend works: exactly the deferrals, then the receives. A failed resend spends a
          // receive, which the next copy (starting at receive 1) gives back: still bounded.
          if (!resendFails.includes(true)) expect(handled).toBe(maxRetryDeferrals + maxReceiveCount);
          expect(handled).toBeLessThanOrEqual((maxRetryDeferrals + 1) * maxReceiveCount);
        },
      ),
      { seed, numRuns: 200 },
    );
  });

  it('a heartbeat of a batch keeps every message of it invisible, duplicates and keyless ones included', async () => {
    const queue = fakeQueue(true, { target: standardQueue });
    // The handler outlives a third of its 150 ms lease: it returns once a heartbeat changed visibility.
    let beat!: () => void;
    const beaten = new Promise<void>((resolve) => (beat = resolve));
    const changeVisibility = queue.ops.changeVisibility.bind(queue.ops);
    queue.ops.changeVisibility = async (...args) => (await changeVisibility(...args), beat());
    const runner = new IdempotentHandlerRunner(
      engineWith({ completed: ['done'], inFlight: ['busy'], leaseMs: 150 }).engine,
      queue.ops,
      new DedupMetrics(),
      options(),
    );
    const keyless: Message = { MessageId: '4', ReceiptHandle: 'r-4', Body: '{}' };
    await runner.invoke(
      batchCall(
        [msg('1', 'fresh', 1), msg('2', 'done', 1), msg('3', 'busy', 1), keyless],
        jest.fn(() => beaten),
      ),
    );
    // Two leases from the beat.
    expect(queue.visibility[0]).toEqual({ ids: ['1', '2', '3', '4'], seconds: 0.3 });
  });

  it('deletes redelivered duplicates of a completed key itself (their earlier delete failed); first receives are left to the consumer', async () => {
    const queue = fakeQueue(true, { target: standardQueue });
    const runner = new IdempotentHandlerRunner(
      engineWith({ completed: ['done'] }).engine,
      queue.ops,
      new DedupMetrics(),
      options(),
    );
    await expect(runner.invoke(singleCall(msg('1', 'done', 3)))).resolves.toBeUndefined();
    await expect(runner.invoke(singleCall(msg('2', 'done', 1)))).resolves.toBeUndefined();
    const acked = await runner.invoke(
      batchCall(
        [msg('3', 'done', 2), msg('4', 'done', 1)],
        jest.fn(async () => undefined),
      ),
    );
    expect((acked as Message[]).map((m) => m.MessageId).sort()).toEqual(['3', '4']);
    expect(queue.deleted).toEqual(['1', '3']);
  });

  it('counts a re-sent copy coming back as a redelivery, whatever its receive count', () => {
    const copy: Message = {
      ...msg('copy', 'k', 1),
      MessageAttributes: { [DEFERRED_FROM_ATTRIBUTE]: { DataType: 'String', StringValue: 'original' } },
    };
    expect(duplicateCause(copy, 'someone-else')).toBe('redelivery');
    expect(duplicateCause({ ...copy, Attributes: undefined }, undefined)).toBe('redelivery');
  });
});
