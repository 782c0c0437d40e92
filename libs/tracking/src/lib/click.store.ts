import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import type { TrackingClick } from './tracking-click.entity';

/** A click as it is written: every column but the row id, its `clickId` always set. */
export type ClickRow = Omit<TrackingClick, 'id' | 'clickId'> & { clickId: string };

/** Where clicks land for good. */
export abstract class ClickStore {
  /** Writes `rows`; a click already written (same `clickId`) is left as it is. */
  abstract insert(rows: readonly ClickRow[]): Promise<void>;
}

/**
 * `tracking_clicks` in Postgres: one `INSERT … SELECT FROM unnest(…)` per batch (ten array
 * parameters whatever the batch size), `ON CONFLICT (click_id) DO NOTHING`.
 */
@Injectable()
export class PostgresClickStore extends ClickStore {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {
    super();
  }

  async insert(rows: readonly ClickRow[]): Promise<void> {
    if (rows.length === 0) return;
    const column = <K extends keyof ClickRow>(key: K) => rows.map((row) => row[key]);
    await this.dataSource.query(
      `INSERT INTO tracking_clicks (click_id, clicked_at, path, campaign, recipient_id, message_key, content, term,
                                    user_agent_class, bot, bot_reason)
       SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                            $8::text[], $9::varchar[], $10::boolean[], $11::varchar[])
       ON CONFLICT (click_id) DO NOTHING`,
      [
        column('clickId'),
        column('clickedAt'),
        column('path'),
        column('campaign'),
        column('recipientId'),
        column('messageKey'),
        column('content'),
        column('term'),
        column('userAgentClass'),
        column('bot'),
        column('botReason'),
      ],
    );
  }
}
