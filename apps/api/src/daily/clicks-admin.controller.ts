import { Controller, Get, Query } from '@nestjs/common';
import { ApiBadRequestResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ClickSummary, ClickSummaryService } from '@once/tracking';
import { AdminOnly } from '../admin-auth/admin.decorator';
import { ApiClicksSummaryQuery, clicksSummaryQueryOrBadRequest } from './clicks-summary.query';

/**
 * Click statistics for operators. Kept separate from the public redirect so the admin guard can be put on
 * this class alone.
 */
@ApiTags('admin: clicks')
@AdminOnly()
@Controller('admin/clicks')
export class ClicksAdminController {
  constructor(private readonly summaries: ClickSummaryService) {}

  /**
   * `GET /admin/clicks/summary?from=YYYY-MM-DD&to=YYYY-MM-DD&campaign=…`: clicks per campaign and UTC day,
   * unique recipients and bot share. 400 with `details` on invalid input.
   */
  @Get('summary')
  @ApiOperation({ summary: 'Clicks per campaign and UTC day, unique recipients, bot share' })
  @ApiClicksSummaryQuery()
  @ApiBadRequestResponse({ description: 'invalid query (details per field)' })
  async summary(@Query() raw: Record<string, unknown>): Promise<ClickSummary> {
    return this.summaries.summarize(clicksSummaryQueryOrBadRequest(raw, new Date()));
  }
}
