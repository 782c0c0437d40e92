import { randomUUID } from 'node:crypto';
import {
  BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  OnModuleInit,
  Optional,
} from '@nestjs/common';
import { ClickSpill } from './click-spill.stream';
import { type ClickRow, ClickStore } from './click.store';
import { TRACKING_OPTIONS, type ResolvedTrackingOptions } from './tracking.options';
import type { BotReason, UserAgentClass } from './user-agent.classifier';

/** One hit to record. */
export interface ClickInput {
  path: string;
  campaign: string;
  recipientId?: string | null;
  messageKey?: string | null;
  content?: string | null;
  term?: string | null;
  userAgentClass: UserAgentClass;
  bot: boolean;
  botReason?: BotReason | null;
  /** Defaults to now. */
  clickedAt?: Date;
}

/** After Postgres refused a batch, batches go straight to the spill this long before Postgres is tried again. */
const DATABASE_RETRY_MS = 1000;
/** How often a recorder looks for clicks another process (or an earlier run) left in the spill. */
const SPILL_CHECK_MS = 5000;
/** Spilled clicks moved into Postgres per flush at most, so a long backlog does not hold new clicks back. */
const DRAIN_PER_FLUSH = 5000;

/**
 * Buffers clicks in memory and writes them to Postgres in multi-row INSERTs: when a batch fills
 * up, every `flushIntervalMs` (default 100 ms: what a SIGKILL can lose) and before the application
 * shuts down. `record()` never waits for the database, so the redirect is not slowed by it. A
 * batch Postgres refuses goes to the spill (`clickSpill`, a Redis stream) when there is one, and
 * for a second the next batches go there directly; every flush then moves spilled clicks back
 * into Postgres while it takes them, in order. Without a spill, or with Redis down too, clicks
 * stay buffered (up to `maxBuffered`, oldest dropped first, logged) and the next flush retries.
 * Each click carries an id, so a batch written twice (an answer lost, two replicas draining one
 * spill) lands once.
 */
@Injectable()
export class ClickRecorder implements OnModuleInit, BeforeApplicationShutdown {
  private readonly logger = new Logger(ClickRecorder.name);
  private readonly settings: ResolvedTrackingOptions['clickRecorder'];
  private buffer: ClickRow[] = [];
  private queue: Promise<unknown> = Promise.resolve();
  private busy = false;
  private timer: NodeJS.Timeout | undefined;
  private droppedSinceLog = 0;
  /** Until then, batches skip Postgres (it just refused one) and go to the spill. */
  private databaseRetryAt = 0;
  /** The spill may hold clicks (this process spilled, or it was not looked at for a while). */
  private spillMayHold = true;
  private spillCheckedAt = 0;
  private spilling = false;

  constructor(
    private readonly store: ClickStore,
    @Inject(TRACKING_OPTIONS) options: ResolvedTrackingOptions,
    @Optional() @Inject(ClickSpill) private readonly spill?: ClickSpill | null,
  ) {
    this.settings = options.clickRecorder;
  }

  /** Clicks waiting in memory to be written. */
  get pending(): number {
    return this.buffer.length;
  }

  onModuleInit(): void {
    this.timer = setInterval(() => {
      if (!this.busy) void this.flush();
    }, this.settings.flushIntervalMs);
    this.timer.unref();
  }

  async beforeApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
    if (this.buffer.length > 0) {
      this.logger.error({
        msg: this.spill
          ? 'Clicks lost at shutdown: neither Postgres nor the Redis spill accepted them'
          : 'Clicks lost at shutdown: Postgres did not accept them',
        lost: this.buffer.length,
      });
    }
  }

  /** Queues a click; returns at once. */
  record(click: ClickInput): void {
    this.buffer.push({
      clickId: randomUUID(),
      clickedAt: click.clickedAt ?? new Date(),
      path: click.path,
      campaign: click.campaign,
      recipientId: click.recipientId ?? null,
      messageKey: click.messageKey ?? null,
      content: click.content ?? null,
      term: click.term ?? null,
      userAgentClass: click.userAgentClass,
      bot: click.bot,
      botReason: click.botReason ?? null,
    });
    this.trim();
    if (!this.busy && this.buffer.length >= this.settings.batchSize) void this.flush();
  }

  /**
   * Writes everything buffered, in batches, then moves spilled clicks into Postgres; resolves with
   * the number of rows written to Postgres. Flushes run one at a time; a batch neither Postgres nor
   * the spill took goes back to the buffer for the next flush. Never rejects.
   */
  flush(): Promise<number> {
    const run = this.queue.then(() => this.writeAll());
    this.queue = run;
    return run;
  }

  private async writeAll(): Promise<number> {
    this.busy = true;
    let written = 0;
    try {
      while (this.buffer.length > 0) {
        const batch = this.buffer.splice(0, this.settings.batchSize);
        if (Date.now() >= this.databaseRetryAt || !this.spill) {
          try {
            await this.store.insert(batch);
            written += batch.length;
            this.databaseRetryAt = 0;
            continue;
          } catch (error) {
            this.databaseRetryAt = Date.now() + DATABASE_RETRY_MS;
            if (!this.spill) {
              this.keep(batch, 'Could not write clicks; will retry', error);
              break;
            }
          }
        }
        if (!(await this.spillBatch(batch))) break;
      }
      if (Date.now() >= this.databaseRetryAt) written += await this.drainSpill();
    } finally {
      this.busy = false;
      this.logDropped();
    }
    return written;
  }

  /** Puts a batch Postgres did not take into the spill; false (batch kept in memory) if Redis refused it too. */
  private async spillBatch(batch: ClickRow[]): Promise<boolean> {
    try {
      await this.spill?.push(batch);
    } catch (error) {
      this.keep(batch, 'Could not write clicks to Postgres nor spill them to Redis; will retry', error);
      return false;
    }
    this.spillMayHold = true;
    if (!this.spilling) {
      this.spilling = true;
      this.logger.warn({
        msg: 'Postgres refused clicks; spilling them to Redis',
        stream: this.spill?.streamKey,
      });
    }
    return true;
  }

  /** Moves spilled clicks (oldest first) into Postgres while it takes them. */
  private async drainSpill(): Promise<number> {
    if (!this.spill) return 0;
    if (!this.spillMayHold && Date.now() - this.spillCheckedAt < SPILL_CHECK_MS) return 0;
    this.spillCheckedAt = Date.now();
    let moved = 0;
    try {
      while (moved < DRAIN_PER_FLUSH) {
        const entries = await this.spill.take(this.settings.batchSize);
        if (entries.length === 0) {
          this.spillMayHold = false;
          if (this.spilling) {
            this.spilling = false;
            this.logger.log({ msg: 'Spilled clicks are all in Postgres again' });
          }
          break;
        }
        const rows = entries.flatMap((entry) => (entry.row ? [entry.row] : []));
        if (rows.length < entries.length)
          this.logger.error({
            msg: 'Spilled entries this version cannot read; removed',
            count: entries.length - rows.length,
          });
        try {
          await this.store.insert(rows);
        } catch (error) {
          this.databaseRetryAt = Date.now() + DATABASE_RETRY_MS;
          throw error;
        }
        await this.spill.remove(entries.map((entry) => entry.id));
        moved += rows.length;
      }
    } catch (error) {
      this.logger.warn({
        msg: 'Could not move spilled clicks into Postgres; will retry',
        error: error instanceof Error ? error.message : String(error),
      });
    }
    return moved;
  }

  private keep(batch: ClickRow[], msg: string, error: unknown): void {
    this.buffer.unshift(...batch);
    this.trim();
    this.logger.warn({
      msg,
      pending: this.buffer.length,
      error: error instanceof Error ? error.message : String(error),
    });
  }

  private trim(): void {
    const excess = this.buffer.length - this.settings.maxBuffered;
    if (excess > 0) {
      this.buffer.splice(0, excess);
      this.droppedSinceLog += excess;
    }
  }

  private logDropped(): void {
    if (this.droppedSinceLog === 0) return;
    this.logger.warn({ msg: 'Click buffer full; oldest clicks dropped', dropped: this.droppedSinceLog });
    this.droppedSinceLog = 0;
  }
}
