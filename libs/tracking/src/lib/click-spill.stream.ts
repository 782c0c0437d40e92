import type { Redis } from 'ioredis';
import type { ClickRow } from './click.store';

/** A spilled click and its stream entry id; no `row` for an entry this version cannot read. */
export interface SpilledClick {
  readonly id: string;
  readonly row?: ClickRow;
}

/** A click as the stream holds it (JSON; the time as ISO text). */
type StoredClick = Omit<ClickRow, 'clickedAt'> & { clickedAt: string };

function readClick(fields: readonly string[]): ClickRow | undefined {
  const at = fields.indexOf('c');
  if (at < 0 || at % 2 !== 0) return undefined;
  try {
    const stored = JSON.parse(fields[at + 1] ?? '') as StoredClick;
    const clickedAt = new Date(stored.clickedAt);
    if (typeof stored.clickId !== 'string' || Number.isNaN(clickedAt.getTime())) return undefined;
    return { ...stored, clickedAt };
  } catch {
    return undefined;
  }
}

/**
 * The durable buffer for clicks Postgres cannot take: a Redis stream (`XADD … MAXLEN ~ maxLength`,
 * one entry per click, field `c` holding it as JSON), read from its head (`XRANGE`) and emptied
 * (`XDEL`) once the clicks are in Postgres. Several api replicas may spill into and drain one
 * stream: a click drained twice lands once (its `clickId`). Uses only stream commands Valkey has.
 */
export class ClickSpill {
  constructor(
    private readonly redis: Redis,
    readonly streamKey: string,
    private readonly maxLength: number,
  ) {}

  /** Appends `rows` in one round trip; rejects if any was not appended (the caller keeps them all). */
  async push(rows: readonly ClickRow[]): Promise<void> {
    const pipeline = this.redis.pipeline();
    for (const row of rows) {
      const stored: StoredClick = { ...row, clickedAt: row.clickedAt.toISOString() };
      pipeline.xadd(this.streamKey, 'MAXLEN', '~', this.maxLength, '*', 'c', JSON.stringify(stored));
    }
    const replies = (await pipeline.exec()) ?? [];
    const failed = replies.find(([error]) => error);
    if (failed?.[0]) throw failed[0];
  }

  /** Up to `count` clicks from the head of the stream, oldest first. */
  async take(count: number): Promise<SpilledClick[]> {
    const entries = await this.redis.xrange(this.streamKey, '-', '+', 'COUNT', count);
    return entries.map(([id, fields]) => ({ id, row: readClick(fields) }));
  }

  /** Removes entries once their clicks are in Postgres. */
  async remove(ids: readonly string[]): Promise<void> {
    if (ids.length > 0) await this.redis.xdel(this.streamKey, ...ids);
  }

  /** Entries in the stream (every replica's). */
  length(): Promise<number> {
    return this.redis.xlen(this.streamKey);
  }
}
