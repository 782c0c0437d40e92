import { Logger } from '@nestjs/common';
import { RefusedLinkLog } from './refused-link.log';
import { parseTrackingOptions } from './tracking.options';

const options = (logIntervalMs?: number) =>
  parseTrackingOptions({
    baseUrl: 'https://site.example',
    secrets: ['a-secret-of-thirty-two-characters-or-more'],
    refusedLinks: logIntervalMs === undefined ? undefined : { logIntervalMs },
  });

describe('RefusedLinkLog', () => {
  let warn: jest.SpyInstance;

  beforeEach(() => {
    jest.useFakeTimers();
    warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
  });

  afterEach(() => {
    jest.useRealTimers();
    warn.mockRestore();
  });

  const lines = () => warn.mock.calls.map(([line]) => line as Record<string, unknown>);

  it('a flood writes the first refusal in full and one summary per interval, and counts every refusal', () => {
    const log = new RefusedLinkLog(options());
    log.refused('bad-signature', { behaviour: 'error-page' });
    for (let i = 0; i < 9_999; i++) log.refused(i % 3 === 0 ? 'malformed' : 'bad-signature');
    expect(lines()).toEqual([
      { msg: 'Refused tracking link', reason: 'bad-signature', behaviour: 'error-page' },
    ]);
    jest.advanceTimersByTime(10_000);
    expect(lines()).toHaveLength(2);
    expect(lines()[1]).toEqual({
      msg: 'Refused tracking links, not logged one by one',
      refused: 9_999,
      byReason: { malformed: 3_333, 'bad-signature': 6_666 },
      intervalMs: 10_000,
    });
    expect(log.totals()).toEqual({ 'bad-signature': 6_667, malformed: 3_333 });
  });

  it('fields given as a function are built only for the line that is written', () => {
    const log = new RefusedLinkLog(options());
    const fields = jest.fn(() => ({ reqId: 'r1' }));
    for (let i = 0; i < 100; i++) log.refused('malformed', fields);
    expect(fields).toHaveBeenCalledTimes(1);
    expect(lines()[0]).toMatchObject({ reqId: 'r1' });
  });

  it('a quiet interval ends without a summary; the next refusal is logged in full again', () => {
    const log = new RefusedLinkLog(options(1_000));
    log.refused('unsigned');
    jest.advanceTimersByTime(1_000);
    log.refused('off-site');
    expect(lines().map((line) => [line.msg, line.reason])).toEqual([
      ['Refused tracking link', 'unsigned'],
      ['Refused tracking link', 'off-site'],
    ]);
  });

  it('at shutdown the refusals held so far are summarized at once', () => {
    const log = new RefusedLinkLog(options());
    log.refused('unsigned');
    log.refused('not-allowed');
    log.onModuleDestroy();
    expect(lines()[1]).toMatchObject({ refused: 1, byReason: { 'not-allowed': 1 } });
    jest.advanceTimersByTime(60_000);
    expect(lines()).toHaveLength(2);
  });

  it('refuses an interval outside 100 ms – 1 h, naming the option', () => {
    expect(() => options(10)).toThrow(/refusedLinks\.logIntervalMs/);
    expect(() => options(3_600_001)).toThrow(/refusedLinks\.logIntervalMs/);
  });
});
