import { applyDecorators } from '@nestjs/common';
import { ApiQuery } from '@nestjs/swagger';
import type { ClickSummaryQuery } from '@once/tracking';
import { z } from 'zod';
import { validationFailed } from '../common/validation-failed.exception';

const DAY_MS = 86_400_000;
/** Longest range one summary request may cover. */
export const MAX_SUMMARY_DAYS = 366;
/** Range when `from` is not given: this many days before `to`. */
export const DEFAULT_SUMMARY_DAYS = 30;

const moment = z.union([z.iso.date(), z.iso.datetime({ offset: true })], {
  error: 'must be a date (YYYY-MM-DD) or an ISO 8601 date-time with a time zone',
});

/**
 * Query of `GET /admin/clicks/summary`. A date-only `from` starts that UTC day; a date-only `to` includes its
 * whole UTC day; date-times are taken exactly (`to` exclusive). Defaults: `to` = end of today (UTC), `from` =
 * 30 days before `to`.
 */
export const clicksSummaryQuerySchema = z.strictObject({
  from: moment.optional(),
  to: moment.optional(),
  campaign: z.string().trim().min(1, 'must not be empty').max(200).optional(),
});

export type ClicksSummaryQueryResult =
  { ok: true; query: ClickSummaryQuery } | { ok: false; issues: Array<{ path: string; message: string }> };

function startOfUtcDay(date: Date): Date {
  return new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate()));
}

/** Validates the raw query object (as Express parsed it) into a summary query. */
export function parseClicksSummaryQuery(raw: unknown, now: Date): ClicksSummaryQueryResult {
  const parsed = clicksSummaryQuerySchema.safeParse(raw);
  if (!parsed.success) {
    return {
      ok: false,
      issues: parsed.error.issues.map((issue) => ({
        path: issue.path.join('.') || (issue.code === 'unrecognized_keys' ? issue.keys.join(',') : '(query)'),
        message: issue.message,
      })),
    };
  }
  const { from, to, campaign } = parsed.data;
  const toDate = to === undefined ? new Date(startOfUtcDay(now).getTime() + DAY_MS) : toInstant(to, 'end');
  const fromDate =
    from === undefined
      ? new Date(toDate.getTime() - DEFAULT_SUMMARY_DAYS * DAY_MS)
      : toInstant(from, 'start');

  if (fromDate.getTime() >= toDate.getTime()) {
    return { ok: false, issues: [{ path: 'from', message: 'must be before to' }] };
  }
  if (toDate.getTime() - fromDate.getTime() > MAX_SUMMARY_DAYS * DAY_MS) {
    return {
      ok: false,
      issues: [{ path: 'to', message: `the range must not exceed ${MAX_SUMMARY_DAYS} days` }],
    };
  }
  return { ok: true, query: { from: fromDate, to: toDate, ...(campaign ? { campaign } : {}) } };
}

function toInstant(value: string, edge: 'start' | 'end'): Date {
  if (value.length === 10) {
    const day = new Date(`${value}T00:00:00Z`);
    return edge === 'start' ? day : new Date(day.getTime() + DAY_MS);
  }
  return new Date(value);
}

/** {@link parseClicksSummaryQuery}, or a 400 with `details` per field like every admin route. */
export function clicksSummaryQueryOrBadRequest(raw: unknown, now: Date): ClickSummaryQuery {
  const parsed = parseClicksSummaryQuery(raw ?? {}, now);
  if (parsed.ok) return parsed.query;
  throw validationFailed(parsed.issues.map((issue) => ({ field: issue.path, message: issue.message })));
}

/** The OpenAPI description of the clicks summary query (`from`, `to`, `campaign`). */
export function ApiClicksSummaryQuery(): MethodDecorator {
  return applyDecorators(
    ApiQuery({
      name: 'from',
      required: false,
      description: 'clicks range start: YYYY-MM-DD (UTC day) or ISO date-time; default 30 days before to',
      example: '2026-11-01',
    }),
    ApiQuery({
      name: 'to',
      required: false,
      description:
        'clicks range end: YYYY-MM-DD (whole UTC day included) or ISO date-time (exclusive); default end of today',
      example: '2026-11-30',
    }),
    ApiQuery({
      name: 'campaign',
      required: false,
      description: 'only this campaign, 1–200 characters',
      example: 'daily-digest',
    }),
  );
}
