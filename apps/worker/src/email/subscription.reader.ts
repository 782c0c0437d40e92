import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { User } from '@once/platform';
import DataLoader from 'dataloader';
import type { DataSource } from 'typeorm';

const MAX_BIGINT = 9_223_372_036_854_775_807n;

/** The user id as Postgres prints a bigint, or undefined when it is none (such ids are looked up alone). */
function bigintId(userId: string): string | undefined {
  if (!/^\d{1,19}$/.test(userId)) return undefined;
  const id = BigInt(userId);
  return id <= MAX_BIGINT ? id.toString() : undefined;
}

/**
 * Whether the users emails are addressed to are still subscribed, read at send time. The lookups
 * of concurrent sends (the ten messages of a receive batch) go to Postgres as one
 * `WHERE id = ANY(…)` (DataLoader, no cache: every send reads the current value). An id that is no
 * bigint is looked up alone, so its error stays its own message's. A user deleted since the
 * fan-out counts as unsubscribed.
 */
@Injectable()
export class SubscriptionReader {
  private readonly loader = new DataLoader<string, boolean>((ids) => this.readMany(ids), {
    cache: false,
    maxBatchSize: 100,
  });

  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  isSubscribed(userId: string): Promise<boolean> {
    const id = bigintId(userId);
    return id === undefined ? this.readOne(userId) : this.loader.load(id);
  }

  private async readMany(ids: readonly string[]): Promise<boolean[]> {
    const rows: { id: string; subscribed: boolean }[] = await this.dataSource.query(
      'SELECT id::text AS id, subscribed FROM users WHERE id = ANY($1::bigint[])',
      [ids],
    );
    const subscribed = new Map(rows.map((row) => [row.id, row.subscribed]));
    return ids.map((id) => subscribed.get(id) ?? false);
  }

  private async readOne(userId: string): Promise<boolean> {
    const user = await this.dataSource
      .getRepository(User)
      .findOne({ where: { id: userId }, select: { id: true, subscribed: true } });
    return user?.subscribed ?? false;
  }
}
