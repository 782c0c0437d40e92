import { Controller, Get, Query } from '@nestjs/common';
import { ApiBadRequestResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { AdminOnly } from '../admin-auth/admin.decorator';
import { ApiClicksSummaryQuery, clicksSummaryQueryOrBadRequest } from '../daily/clicks-summary.query';
import { AdminStats, AdminStatsService } from './admin-stats.service';

@ApiTags('admin: stats')
@AdminOnly()
@Controller('admin/stats')
export class StatsAdminController {
  constructor(private readonly stats: AdminStatsService) {}

  @Get()
  @ApiOperation({
    summary:
      'Duplicates suppressed per scope by cause (SQS redelivery vs producer duplicate), dedup records per scope and state (Postgres; not the Redis-only scopes such as send-email), mail ledger by status, clicks summary, queue and DLQ depths',
  })
  @ApiClicksSummaryQuery()
  @ApiOkResponse({
    description:
      '{ generatedAt, duplicates: [{ scope, suppressed: {redelivery, producerDuplicate, unknown, total}, deferred: {…}, payloadMismatches }], dedupRecords: [{ scope, inProgress, completed, expired }], mail: { byStatus, total }, clicks: ClickSummary, queues: QueueStatus[] | null }',
  })
  @ApiBadRequestResponse({ description: 'invalid query (details per field)' })
  get(@Query() raw: Record<string, unknown>): Promise<AdminStats> {
    return this.stats.collect(clicksSummaryQueryOrBadRequest(raw, new Date()));
  }
}
