import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository } from 'typeorm';
import { TrackingClick } from './tracking-click.entity';

export interface ClickSummaryQuery {
  /** Inclusive start. */
  from: Date;
  /** Exclusive end. */
  to: Date;
  /** Only this campaign. */
  campaign?: string;
}

export interface ClickCounts {
  /** Hits not flagged as bots. */
  clicks: number;
  /** Hits flagged as suspected bots (HEAD requests, scanners, previews, crawlers, …). */
  botHits: number;
  /** Distinct recipients among the human clicks. */
  uniqueRecipients: number;
  /** botHits / (clicks + botHits), rounded to 4 decimals; 0 when there were no hits. */
  botShare: number;
}

export interface ClickSummary {
  from: string;
  to: string;
  campaign: string | null;
  totals: ClickCounts;
  /** Per campaign over the whole range, by campaign. */
  campaigns: Array<{ campaign: string } & ClickCounts>;
  /** Per UTC day and campaign, by day then campaign. */
  days: Array<{ day: string; campaign: string } & ClickCounts>;
}

interface SummaryRow {
  level: number;
  day: string | null;
  campaign: string | null;
  clicks: number;
  bot_hits: number;
  unique_recipients: number;
}

/** Click statistics for reports and the admin API. */
@Injectable()
export class ClickSummaryService {
  constructor(@InjectRepository(TrackingClick) private readonly repository: Repository<TrackingClick>) {}

  /** Clicks per campaign and UTC day in `[from, to)`, unique recipients and bot share, with totals. */
  async summarize(query: ClickSummaryQuery): Promise<ClickSummary> {
    // GROUPING(day, campaign): 0 = per day and campaign, 2 = per campaign, 3 = grand total (always present).
    const rows: SummaryRow[] = await this.repository.query(
      `WITH hits AS (
         SELECT (clicked_at AT TIME ZONE 'UTC')::date AS day, campaign, recipient_id, bot
         FROM tracking_clicks
         WHERE clicked_at >= $1 AND clicked_at < $2 AND ($3::text IS NULL OR campaign = $3::text)
       )
       SELECT GROUPING(day, campaign)::int AS level,
              to_char(day, 'YYYY-MM-DD') AS day,
              campaign,
              (count(*) FILTER (WHERE NOT bot))::int AS clicks,
              (count(*) FILTER (WHERE bot))::int AS bot_hits,
              (count(DISTINCT recipient_id) FILTER (WHERE NOT bot))::int AS unique_recipients
       FROM hits
       GROUP BY GROUPING SETS ((day, campaign), (campaign), ())
       ORDER BY level, day, campaign`,
      [query.from, query.to, query.campaign ?? null],
    );

    const total = rows.find((row) => row.level === 3);
    return {
      from: query.from.toISOString(),
      to: query.to.toISOString(),
      campaign: query.campaign ?? null,
      totals: total ? counts(total) : { clicks: 0, botHits: 0, uniqueRecipients: 0, botShare: 0 },
      campaigns: rows
        .filter((row) => row.level === 2)
        .map((row) => ({ campaign: row.campaign ?? '', ...counts(row) })),
      days: rows
        .filter((row) => row.level === 0)
        .map((row) => ({ day: row.day ?? '', campaign: row.campaign ?? '', ...counts(row) })),
    };
  }
}

function counts(row: SummaryRow): ClickCounts {
  const hits = row.clicks + row.bot_hits;
  return {
    clicks: row.clicks,
    botHits: row.bot_hits,
    uniqueRecipients: row.unique_recipients,
    botShare: hits === 0 ? 0 : Math.round((row.bot_hits / hits) * 10_000) / 10_000,
  };
}
