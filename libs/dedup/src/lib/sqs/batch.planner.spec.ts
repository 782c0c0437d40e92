import { MissingIdempotencyKeyError } from '../dedup.errors';
import { ackList, acknowledgedInBatch, isAcknowledged, planBatch } from './batch.planner';

const message = (id: string, eventId?: string) => ({
  MessageId: id,
  Body: JSON.stringify(eventId === undefined ? {} : { eventId }),
});
const keyOf = (m: { MessageId: string; Body: string }) => {
  const eventId = (JSON.parse(m.Body) as { eventId?: string }).eventId;
  if (!eventId) throw new MissingIdempotencyKeyError('scope', 'no key', m.MessageId);
  return eventId;
};

describe('planBatch', () => {
  it('groups in-batch duplicates under the first message and sets keyless ones aside', () => {
    const [a1, b1, a2, none, a3] = [
      message('1', 'a'),
      message('2', 'b'),
      message('3', 'a'),
      message('4'),
      message('5', 'a'),
    ];

    const plan = planBatch([a1, b1, a2, none, a3], keyOf);

    expect(plan.groups).toEqual([
      { key: 'a', leader: a1, followers: [a2, a3] },
      { key: 'b', leader: b1, followers: [] },
    ]);
    expect(plan.missing).toHaveLength(1);
    expect(plan.missing[0]?.message).toBe(none);
    expect(plan.missing[0]?.error).toBeInstanceOf(MissingIdempotencyKeyError);
  });

  it('lets unexpected key errors through', () => {
    expect(() =>
      planBatch([message('1', 'a')], () => {
        throw new RangeError('bug');
      }),
    ).toThrow(RangeError);
  });
});

describe('acknowledgement semantics of sqs-consumer 11', () => {
  const [m1, m2, m3] = [message('1', 'a'), message('2', 'b'), message('3', 'c')];

  it('single: a non-object result acknowledges, an object only if it is the message', () => {
    expect(isAcknowledged(undefined, m1)).toBe(true);
    expect(isAcknowledged('done', m1)).toBe(true);
    expect(isAcknowledged(m1, m1)).toBe(true);
    expect(isAcknowledged({ MessageId: '1' }, m1)).toBe(true);
    expect(isAcknowledged({}, m1)).toBe(false);
    expect(isAcknowledged(m2, m1)).toBe(false);
  });

  it('batch: void acknowledges all, an array those in it (by identity or MessageId), other objects none', () => {
    expect(acknowledgedInBatch(undefined, [m1, m2])).toEqual([true, true]);
    expect(acknowledgedInBatch([m2], [m1, m2, m3])).toEqual([false, true, false]);
    expect(acknowledgedInBatch([{ MessageId: '3' }], [m1, m2, m3])).toEqual([false, false, true]);
    expect(acknowledgedInBatch([], [m1, m2])).toEqual([false, false]);
    expect(acknowledgedInBatch({ ok: true }, [m1])).toEqual([false]);
  });

  it('the returned ack list holds each MessageId once (DeleteMessageBatch rejects repeats)', () => {
    const again = { ...m1 };
    expect(ackList<{ MessageId?: string; Body: string }>([m1, m2, again, { Body: 'no id' }])).toEqual([
      m1,
      m2,
    ]);
  });
});
