import { parseClicksSummaryQuery } from './clicks-summary.query';

const NOW = new Date('2026-11-22T15:30:00Z');

describe('parseClicksSummaryQuery', () => {
  it('defaults to the 30 days ending with today (UTC)', () => {
    expect(parseClicksSummaryQuery({}, NOW)).toEqual({
      ok: true,
      query: { from: new Date('2026-10-24T00:00:00Z'), to: new Date('2026-11-23T00:00:00Z') },
    });
  });

  it('treats dates as whole UTC days and date-times as exact instants', () => {
    expect(
      parseClicksSummaryQuery({ from: '2026-11-01', to: '2026-11-02', campaign: ' Daily ' }, NOW),
    ).toEqual({
      ok: true,
      query: {
        from: new Date('2026-11-01T00:00:00Z'),
        to: new Date('2026-11-03T00:00:00Z'),
        campaign: 'Daily',
      },
    });
    expect(
      parseClicksSummaryQuery({ from: '2026-11-01T06:00:00+02:00', to: '2026-11-01T12:00:00Z' }, NOW),
    ).toEqual({
      ok: true,
      query: { from: new Date('2026-11-01T04:00:00Z'), to: new Date('2026-11-01T12:00:00Z') },
    });
    expect(parseClicksSummaryQuery({ to: '2026-11-10' }, NOW)).toMatchObject({
      ok: true,
      query: { from: new Date('2026-10-12T00:00:00Z') },
    });
  });

  it.each([
    [{ from: 'yesterday' }, 'from', 'must be a date (YYYY-MM-DD) or an ISO 8601 date-time with a time zone'],
    [{ from: '2026-02-30' }, 'from', 'must be a date'],
    [{ to: '2026-11-01T10:00:00' }, 'to', 'must be a date'],
    [{ from: ['2026-11-01', '2026-11-02'] }, 'from', 'must be a date'],
    [{ campaign: '   ' }, 'campaign', 'must not be empty'],
    [{ campaign: 'x'.repeat(201) }, 'campaign', '200'],
    [{ form: '2026-11-01' }, 'form', 'Unrecognized key'],
    [{ from: '2026-11-02', to: '2026-11-01' }, 'from', 'must be before to'],
    [{ from: '2026-11-01T10:00:00Z', to: '2026-11-01T10:00:00Z' }, 'from', 'must be before to'],
    [{ from: '2025-01-01', to: '2026-11-01' }, 'to', 'the range must not exceed 366 days'],
  ])('refuses %j with an issue on %s', (raw, path, message) => {
    const result = parseClicksSummaryQuery(raw, NOW);
    if (result.ok) throw new Error('expected the query to be refused');
    expect(result.issues).toContainEqual({ path, message: expect.stringContaining(message) });
  });
});
