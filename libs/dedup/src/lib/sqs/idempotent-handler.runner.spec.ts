import type { Message } from '@aws-sdk/client-sqs';
import { Logger } from '@nestjs/common';
import { DedupMetrics, type DedupMetricEvent } from '../dedup-metrics.service';
import { DuplicateInFlightError, MissingIdempotencyKeyError } from '../dedup.errors';
import type { ResolvedDedupOptions } from '../dedup.options';
import type { ExecOutcome, ExecUnit, IdempotencyService, WorkResult } from '../idempotency.service';
import type { IdempotencyContext } from '../dedup.types';
import { duplicateCause, IdempotentHandlerRunner, type IdempotentCall } from './idempotent-handler.runner';
import type { SqsQueueOps } from './sqs-queue.ops';

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

/**
 * A fake engine: keys listed in `completed` / `inFlight` are duplicates, everything else is fresh
 * and handed to the work function, whose acknowledgements decide executed vs not-acked.
 */
function fakeService(
  state: {
    completed?: string[];
    inFlight?: string[];
    /** Counts duplicates the way IdempotencyService does (scope only). */
    metrics?: DedupMetrics;
    /** MessageId of each key's record, as `get` returns it. */
    records?: Record<string, string | null>;
  } = {},
) {
  const executed: string[][] = [];
  const reads: string[] = [];
  const service = {
    get: async (key: string, { scope }: { scope?: string }) => {
      reads.push(`${scope}:${key}`);
      const messageId = state.records?.[key];
      return messageId === undefined ? null : { key, scope, messageId };
    },
    resolve: (options: { scope?: string; transactional?: boolean }) => ({
      scope: options.scope ?? 'default',
      ttlMs: 60_000,
      leaseMs: 4_000,
      transactional: options.transactional ?? false,
      storeResult: true,
    }),
    execute: async <P>(
      units: readonly ExecUnit<P>[],
      opts: { callerCountsDuplicates?: boolean },
      work: (fresh: P[], context: IdempotencyContext) => Promise<WorkResult>,
    ): Promise<ExecOutcome[]> => {
      executed.push(units.map((unit) => unit.key));
      // As the real service: duplicates are counted here unless the caller counts them with their cause.
      for (const unit of opts.callerCountsDuplicates ? [] : units) {
        if (state.completed?.includes(unit.key))
          state.metrics?.increment('duplicate-completed', { scope: 'Emails.handle' });
        if (state.inFlight?.includes(unit.key))
          state.metrics?.increment('duplicate-in-flight', { scope: 'Emails.handle' });
      }
      const fresh = units.filter(
        (u) => !state.completed?.includes(u.key) && !state.inFlight?.includes(u.key),
      );
      const manager = { fake: 'manager' } as unknown as IdempotencyContext['manager'];
      const done = fresh.length
        ? await work(
            fresh.map((u) => u.payload),
            { claims: [], signal: new AbortController().signal, manager },
          )
        : { acked: [] };
      return units.map((unit): ExecOutcome => {
        if (state.completed?.includes(unit.key)) return { status: 'completed', result: undefined };
        if (state.inFlight?.includes(unit.key)) return { status: 'in-flight', retryAfterMs: 2500 };
        return { status: done.acked[fresh.indexOf(unit)] ? 'executed' : 'not-acked' };
      });
    },
  };
  return { service: service as unknown as IdempotencyService, executed, reads };
}

function fakeQueue(deadLetterWorks = true) {
  const visibility: { ids: (string | undefined)[]; seconds: number }[] = [];
  const deadLettered: string[] = [];
  const ops = {
    changeVisibility: async (_consumer: string, messages: readonly Message[], seconds: number) => {
      visibility.push({ ids: messages.map((m) => m.MessageId), seconds });
    },
    deadLetter: async (_consumer: string, entries: readonly { message: Message; reason: string }[]) => {
      if (!deadLetterWorks) return new Set<Message>();
      deadLettered.push(...entries.map((e) => `${e.message.MessageId}: ${e.reason}`));
      return new Set(entries.map((e) => e.message));
    },
  };
  return { ops: ops as unknown as SqsQueueOps, visibility, deadLettered };
}

const options = (overrides: Partial<ResolvedDedupOptions> = {}) =>
  ({ manageVisibility: true, missingKey: 'dead-letter', ...overrides }) as ResolvedDedupOptions;

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
    const { service, executed } = fakeService({ completed: ['done'], inFlight: ['busy'] });
    const queue = fakeQueue();
    const runner = new IdempotentHandlerRunner(service, queue.ops, new DedupMetrics(), options());
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
    const { service } = fakeService({ inFlight: ['a', 'b'] });
    const runner = new IdempotentHandlerRunner(service, fakeQueue().ops, new DedupMetrics(), options());
    const handler = jest.fn();

    await expect(runner.invoke(batchCall([msg('1', 'a'), msg('2', 'b')], handler))).resolves.toEqual([]);
    expect(handler).not.toHaveBeenCalled();
  });

  it('keeps keyless messages for SQS redrive when they cannot be dead-lettered', async () => {
    const { service } = fakeService();
    const runner = new IdempotentHandlerRunner(service, fakeQueue(false).ops, new DedupMetrics(), options());
    const fresh = msg('1', 'a');

    await expect(runner.invoke(batchCall([fresh, msg('2')], async () => undefined))).resolves.toEqual([
      fresh,
    ]);
  });

  it('rethrows a handler failure without dead-lettering anything (the whole batch comes back)', async () => {
    const { service } = fakeService();
    const queue = fakeQueue();
    const runner = new IdempotentHandlerRunner(service, queue.ops, new DedupMetrics(), options());

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
    const { service } = fakeService();
    const runner = new IdempotentHandlerRunner(service, fakeQueue().ops, new DedupMetrics(), options());
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
      fakeService({ completed: ['old'] }).service,
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
      fakeService({ inFlight: ['busy'] }).service,
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
      fakeService().service,
      fakeQueue().ops,
      metrics,
      options(),
    );
    await expect(deadLettering.invoke(singleCall(msg('1'), handler))).resolves.toBeUndefined();

    const noDlq = new IdempotentHandlerRunner(
      fakeService().service,
      fakeQueue(false).ops,
      metrics,
      options(),
    );
    await expect(noDlq.invoke(singleCall(msg('2'), handler))).rejects.toBeInstanceOf(
      MissingIdempotencyKeyError,
    );

    const queue = fakeQueue();
    const throwing = new IdempotentHandlerRunner(
      fakeService().service,
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
    const { service, reads } = fakeService({ completed: ['done'], inFlight: ['busy'], metrics });
    const runner = new IdempotentHandlerRunner(service, fakeQueue().ops, metrics, options());

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
    const { service, reads } = fakeService({
      completed: ['a', 'b', 'c'],
      records: { a: 'm1', b: 'other', c: null },
      metrics,
    });
    const runner = new IdempotentHandlerRunner(service, fakeQueue().ops, metrics, options());

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
    const { service } = fakeService({ completed: ['done'], metrics });
    const runner = new IdempotentHandlerRunner(service, fakeQueue().ops, metrics, options());
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
    const { service } = fakeService({ metrics });
    const runner = new IdempotentHandlerRunner(service, fakeQueue().ops, metrics, options());

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
