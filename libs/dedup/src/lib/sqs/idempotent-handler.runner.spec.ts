import type { Message } from '@aws-sdk/client-sqs';
import { Logger } from '@nestjs/common';
import { DedupMetrics } from '../dedup-metrics.service';
import { DuplicateInFlightError, MissingIdempotencyKeyError } from '../dedup.errors';
import type { ResolvedDedupOptions } from '../dedup.options';
import type { ExecOutcome, ExecUnit, IdempotencyService, WorkResult } from '../idempotency.service';
import type { IdempotencyContext } from '../dedup.types';
import { IdempotentHandlerRunner, type IdempotentCall } from './idempotent-handler.runner';
import type { SqsQueueOps } from './sqs-queue.ops';

const msg = (id: string, eventId?: string): Message => ({
  MessageId: id,
  ReceiptHandle: `rh-${id}`,
  Body: JSON.stringify(eventId === undefined ? { other: 1 } : { eventId }),
});

/**
 * A fake engine: keys listed in `completed` / `inFlight` are duplicates, everything else is fresh
 * and handed to the work function, whose acknowledgements decide executed vs not-acked.
 */
function fakeService(state: { completed?: string[]; inFlight?: string[] } = {}) {
  const executed: string[][] = [];
  const service = {
    resolve: (options: { scope?: string; transactional?: boolean }) => ({
      scope: options.scope ?? 'default',
      ttlMs: 60_000,
      leaseMs: 4_000,
      transactional: options.transactional ?? false,
      storeResult: true,
    }),
    execute: async <P>(
      units: readonly ExecUnit<P>[],
      _opts: unknown,
      work: (fresh: P[], context: IdempotencyContext) => Promise<WorkResult>,
    ): Promise<ExecOutcome[]> => {
      executed.push(units.map((unit) => unit.key));
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
  return { service: service as unknown as IdempotencyService, executed };
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
