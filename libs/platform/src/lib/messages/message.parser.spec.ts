import { jobEventId, jobMessageSchema, legacyJobEventId } from './job.message';
import { MalformedMessageError, parseMessageBody } from './message.parser';

describe('parseMessageBody', () => {
  const slot = new Date('2026-11-22T07:00:00.000Z');
  const body = {
    eventId: jobEventId('daily-digest', '2026-11-22'),
    job: 'daily-digest',
    slot: slot.toISOString(),
    period: '2026-11-22',
    firedAt: slot.toISOString(),
  };

  it('returns the typed body', () => {
    expect(parseMessageBody(jobMessageSchema, { Body: JSON.stringify(body), MessageId: 'm1' })).toEqual({
      ...body,
      trigger: 'cron',
    });
    expect(body.eventId).toBe('daily-digest:2026-11-22');
  });

  it('still reads a job enqueued before periods existed (no period, slot-based eventId)', () => {
    const legacy = { ...body, eventId: legacyJobEventId('daily-digest', slot), period: undefined };
    expect(parseMessageBody(jobMessageSchema, { Body: JSON.stringify(legacy), MessageId: 'm3' })).toEqual({
      eventId: 'daily-digest:2026-11-22T07:00:00.000Z',
      job: 'daily-digest',
      slot: slot.toISOString(),
      firedAt: slot.toISOString(),
      trigger: 'cron',
    });
  });

  it.each([
    ['not json', 'message body is not JSON'],
    [JSON.stringify({ ...body, eventId: '' }), 'eventId'],
    [JSON.stringify({ ...body, job: 'nope' }), 'job'],
    [JSON.stringify({ ...body, period: '2026-11-22T07:00:00.000Z' }), 'period'],
  ])('rejects %s', (raw, detail) => {
    const parse = () => parseMessageBody(jobMessageSchema, { Body: raw, MessageId: 'm2' });
    expect(parse).toThrow(MalformedMessageError);
    expect(parse).toThrow(detail);
  });
});
