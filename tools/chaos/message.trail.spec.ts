import { diagnoseDeadLetter, formatHistory, MessageTrail, onlyFailedDeletes } from './message.trail';

function trailAt(clock: { now: number }): MessageTrail {
  jest.spyOn(Date, 'now').mockImplementation(() => clock.now);
  return new MessageTrail(0);
}

describe('MessageTrail and diagnoseDeadLetter', () => {
  afterEach(() => jest.restoreAllMocks());

  it('names what ended each receive: dedup deferral, visibility change, failed delete, nothing', () => {
    const clock = { now: 0 };
    const trail = trailAt(clock);
    const body = JSON.stringify({ eventId: 'digest:s:user:7' });
    trail.sent('once-send-email', 'm1', body, 'w1');
    const receive = (n: number, at: number, by: string) => {
      clock.now = at;
      trail.received(
        'once-send-email',
        {
          MessageId: 'm1',
          ReceiptHandle: `h${n}`,
          Body: body,
          Attributes: { ApproximateReceiveCount: String(n) },
        },
        by,
      );
    };
    receive(1, 1000, 'w1');
    clock.now = 1100;
    trail.deleted('h1', 'w1', true);
    receive(2, 12_000, 'w2');
    clock.now = 12_050;
    trail.visibility('h2', 11, 'batch', 'w2', false);
    receive(3, 24_000, 'w2');
    clock.now = 24_020;
    trail.visibility('h3', 21, 'single', 'w2', false);
    receive(4, 46_000, 'w3');
    receive(5, 57_000, 'w3');
    clock.now = 61_000;
    trail.visibility('h5', 10, 'batch', 'w3', false);

    const history = trail.forMessageId('m1');
    expect(trail.forEventId('digest:s:user:7').map((item) => item.messageId)).toEqual(['m1']);
    const why = diagnoseDeadLetter(history, null, 5);
    expect(why).toMatch(/^SQS redrive after 5 receives \(maxReceiveCount 5\): /);
    expect(why).toContain('#1 w1 1.0s: failed delete');
    expect(why).toContain('#2 w2 12.0s: dedup deferral 11s (ChangeMessageVisibilityBatch)');
    expect(why).toContain('#3 w2 24.0s: visibility change 21s (ChangeMessageVisibility)');
    expect(why).toContain('#4 w3 46.0s: no answer (visibility expired)');
    expect(why).toContain('#5 w3 57.0s: 1 lease extension');
    expect(formatHistory(history!)).toContain('12.1s w2 visibility 11s (Batch)');
    expect(onlyFailedDeletes(history)).toBe(false);
  });

  it('tells a message every receive of which ended in a failed delete', () => {
    const clock = { now: 0 };
    const trail = trailAt(clock);
    const body = JSON.stringify({ eventId: 'digest:s:user:8' });
    trail.sent('once-send-email', 'm8', body, 'w1');
    for (let n = 1; n <= 5; n++) {
      clock.now = n * 10_000;
      trail.received(
        'once-send-email',
        {
          MessageId: 'm8',
          ReceiptHandle: `h8-${n}`,
          Body: body,
          Attributes: { ApproximateReceiveCount: String(n) },
        },
        'w1',
      );
      clock.now += 10;
      trail.deleted(`h8-${n}`, 'w1', true);
    }
    expect(onlyFailedDeletes(trail.forMessageId('m8'))).toBe(true);
    expect(onlyFailedDeletes(undefined)).toBe(false);
  });

  it('ignores events on handles it never saw and reports a worker reason as is', () => {
    const trail = new MessageTrail(Date.now());
    trail.visibility('unknown-handle', 5, 'batch', 'w1', false);
    trail.deleted('unknown-handle', 'w1', false);
    expect(trail.forMessageId('unknown-handle')).toBeUndefined();
    expect(diagnoseDeadLetter(undefined, 'malformed body', 5)).toBe(
      'dead-lettered by a worker: malformed body',
    );
    expect(diagnoseDeadLetter(undefined, null, 5)).toMatch(/no trail/);
  });
});

describe('MessageTrail.receiveSummary', () => {
  it('tallies what ended every receive, and separately for messages near the redrive limit', () => {
    const trail = new MessageTrail(Date.now());
    const receive = (id: string, n: number) =>
      trail.received(
        'q',
        { MessageId: id, ReceiptHandle: `${id}-${n}`, Attributes: { ApproximateReceiveCount: String(n) } },
        'w1',
      );
    receive('a', 1);
    trail.deleted('a-1', 'w1', false);
    for (let n = 1; n <= 4; n++) {
      receive('b', n);
      trail.visibility(`b-${n}`, 11, 'batch', 'w1', false);
    }
    trail.received('other', { MessageId: 'c', ReceiptHandle: 'c-1' }, 'w1');
    const summary = trail.receiveSummary('q', 5);
    expect(summary).toEqual({
      messages: 2,
      receives: 5,
      ends: { deleted: 1, 'dedup deferral (ChangeMessageVisibilityBatch)': 4 },
      nearLimit: 1,
      nearLimitEnds: { 'dedup deferral (ChangeMessageVisibilityBatch)': 4 },
    });
  });
});
