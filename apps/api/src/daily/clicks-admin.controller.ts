import { BadRequestException, Controller, Get, Query } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { ClickSummary, ClickSummaryService } from '@once/tracking';
import { AdminOnly } from '../admin-auth/admin.decorator';
import { parseClicksSummaryQuery } from './clicks-summary.query';

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
   * unique recipients and bot share. 400 with `issues` on invalid input.
   */
  @Get('summary')
  @ApiOperation({ summary: 'Clicks per campaign and UTC day, unique recipients, bot share' })
  async summary(@Query() raw: Record<string, unknown>): Promise<ClickSummary> {
    const parsed = parseClicksSummaryQuery(raw, new Date());
    if (!parsed.ok) {
      throw new BadRequestException({
        statusCode: 400,
        error: 'Bad Request',
        message: 'Invalid query parameters',
        issues: parsed.issues,
      });
    }
    return this.summaries.summarize(parsed.query);
  }
}
