import { BadRequestException, Controller, Get, Query } from '@nestjs/common';
import { ApiBadRequestResponse, ApiOkResponse, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import { ClickSummaryQuery } from '@once/tracking';
import { AdminOnly } from '../admin-auth/admin.decorator';
import { parseClicksSummaryQuery } from '../daily/clicks-summary.query';
import { AdminStats, AdminStatsService } from './admin-stats.service';

/** Validates the clicks range of `GET /admin/stats`; 400 with `details` like every admin route. */
export function parseStatsQuery(raw: unknown, now: Date): ClickSummaryQuery {
  const parsed = parseClicksSummaryQuery(raw ?? {}, now);
  if (parsed.ok) return parsed.query;
  throw new BadRequestException({
    statusCode: 400,
    error: 'Bad Request',
    message: 'validation failed',
    details: parsed.issues.map((issue) => ({ field: issue.path, message: issue.message })),
  });
}

@ApiTags('admin: stats')
@AdminOnly()
@Controller('admin/stats')
export class StatsAdminController {
  constructor(private readonly stats: AdminStatsService) {}

  @Get()
  @ApiOperation({
    summary:
      'Duplicates suppressed per scope by cause (SQS redelivery vs producer duplicate), dedup records per scope and state, mail ledger by status, clicks summary, queue and DLQ depths',
  })
  @ApiQuery({
    name: 'from',
    required: false,
    description: 'clicks range start: YYYY-MM-DD (UTC day) or ISO date-time; default 30 days before to',
  })
  @ApiQuery({
    name: 'to',
    required: false,
    description:
      'clicks range end: YYYY-MM-DD (whole UTC day included) or ISO date-time (exclusive); default end of today',
  })
  @ApiQuery({ name: 'campaign', required: false, description: 'only this campaign in the clicks summary' })
  @ApiOkResponse({
    description:
      '{ generatedAt, duplicates: [{ scope, suppressed: {redelivery, producerDuplicate, unknown, total}, deferred: {…} }], dedupRecords: [{ scope, inProgress, completed, expired }], mail: { byStatus, total }, clicks: ClickSummary, queues: QueueStatus[] | null }',
  })
  @ApiBadRequestResponse({ description: 'invalid query (details per field)' })
  get(@Query() raw: Record<string, unknown>): Promise<AdminStats> {
    return this.stats.collect(parseStatsQuery(raw, new Date()));
  }
}
