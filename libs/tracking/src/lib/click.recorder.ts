import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository } from 'typeorm';
import { TrackingClick } from './tracking-click.entity';
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

type ClickRow = Omit<TrackingClick, 'id'>;

/**
 * Buffers clicks in memory and writes them to Postgres in multi-row INSERTs: when a batch fills up, on an
 * interval, and before the application shuts down. `record()` never waits for the database, so the redirect
 * is not slowed by it. If Postgres is down, clicks stay buffered (up to `maxBuffered`, oldest dropped first)
 * and the next flush retries.
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

  constructor(
    @InjectRepository(TrackingClick) private readonly repository: Repository<TrackingClick>,
    @Inject(TRACKING_OPTIONS) options: ResolvedTrackingOptions,
  ) {
    this.settings = options.clickRecorder;
  }

  /** Clicks waiting to be written. */
  get pending(): number {
    return this.buffer.length;
  }

  onModuleInit(): void {
    this.timer = setInterval(() => {
      if (!this.busy && this.buffer.length > 0) void this.flush();
    }, this.settings.flushIntervalMs);
    this.timer.unref();
  }

  async beforeApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
    if (this.buffer.length > 0) {
      this.logger.error({
        msg: 'Clicks lost at shutdown: Postgres did not accept them',
        lost: this.buffer.length,
      });
    }
  }

  /** Queues a click; returns at once. */
  record(click: ClickInput): void {
    this.buffer.push({
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
   * Writes everything buffered, in batches; resolves with the number of rows written. Flushes run one at a
   * time; a failed batch goes back to the buffer and is retried by the next flush. Never rejects.
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
        try {
          await this.repository.insert(batch);
          written += batch.length;
        } catch (error) {
          this.buffer.unshift(...batch);
          this.trim();
          this.logger.warn({
            msg: 'Could not write clicks; will retry',
            pending: this.buffer.length,
            error: error instanceof Error ? error.message : String(error),
          });
          break;
        }
      }
    } finally {
      this.busy = false;
      this.logDropped();
    }
    return written;
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
