import { jobEventId, jobMessageSchema } from './job.message';
import { MalformedMessageError, parseMessageBody } from './message.parser';

describe('parseMessageBody', () => {
  const slot = new Date('2026-11-22T07:00:00.000Z');
  const body = {
    eventId: jobEventId('daily-digest', slot),
    job: 'daily-digest',
    slot: slot.toISOString(),
    firedAt: slot.toISOString(),
  };

  it('returns the typed body', () => {
    expect(parseMessageBody(jobMessageSchema, { Body: JSON.stringify(body), MessageId: 'm1' })).toEqual({
      ...body,
      trigger: 'cron',
    });
    expect(body.eventId).toBe('daily-digest:2026-11-22T07:00:00.000Z');
  });

  it.each([
    ['not json', 'message body is not JSON'],
    [JSON.stringify({ ...body, eventId: '' }), 'eventId'],
    [JSON.stringify({ ...body, job: 'nope' }), 'job'],
  ])('rejects %s', (raw, detail) => {
    const parse = () => parseMessageBody(jobMessageSchema, { Body: raw, MessageId: 'm2' });
    expect(parse).toThrow(MalformedMessageError);
    expect(parse).toThrow(detail);
  });
});
