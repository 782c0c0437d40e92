import { Controller, Get, Query } from '@nestjs/common';
import { ApiBadRequestResponse, ApiOkResponse, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import { AdminOnly } from '../admin-auth/admin.decorator';
import { clicksSummaryQueryOrBadRequest } from '../daily/clicks-summary.query';
import { AdminStats, AdminStatsService } from './admin-stats.service';

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
      '{ generatedAt, duplicates: [{ scope, suppressed: {redelivery, producerDuplicate, unknown, total}, deferred: {…}, payloadMismatches }], dedupRecords: [{ scope, inProgress, completed, expired }], mail: { byStatus, total }, clicks: ClickSummary, queues: QueueStatus[] | null }',
  })
  @ApiBadRequestResponse({ description: 'invalid query (details per field)' })
  get(@Query() raw: Record<string, unknown>): Promise<AdminStats> {
    return this.stats.collect(clicksSummaryQueryOrBadRequest(raw, new Date()));
  }
}
