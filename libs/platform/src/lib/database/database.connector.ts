import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';

/** First and longest wait between two connection attempts. */
const FIRST_RETRY_MS = 500;
const MAX_RETRY_MS = 5000;
/** How long boot waits for the first attempt before it goes on without Postgres (a connect that hangs). */
const BOOT_WAIT_MS = 5000;

/**
 * Connects the app's DataSource without holding boot up (`DatabaseOptions.connectInBackground`):
 * boot waits for the first attempt (5 s at most), and if Postgres is unreachable the app starts
 * anyway, serves what needs no database, and is connected once Postgres answers (retried every
 * 0.5–5 s in the background, logged when it fails first and when it succeeds).
 * Until then every query fails (TypeORM's "Driver not Connected"); see {@link isDatabaseUnavailable}.
 */
@Injectable()
export class DatabaseConnector implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(DatabaseConnector.name);
  private stopped = false;
  private done = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly dataSource: DataSource) {}

  /**
   * Whether the DataSource is connected and its boot migrations have run (TypeORM marks it
   * initialized before it runs them).
   */
  get connected(): boolean {
    return this.done;
  }

  /** Boot waits for the first attempt (so a healthy app is connected when it starts to listen), at most `BOOT_WAIT_MS`. */
  async onApplicationBootstrap(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.attempt(FIRST_RETRY_MS, 1),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, BOOT_WAIT_MS))),
    ]);
    clearTimeout(timer);
  }

  onApplicationShutdown(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private async attempt(nextWaitMs: number, attempt: number): Promise<void> {
    if (this.stopped || this.done) return;
    try {
      await this.dataSource.initialize();
      this.done = true;
      if (attempt > 1) this.logger.log({ msg: 'Postgres connected', attempts: attempt });
    } catch (error) {
      if (attempt === 1)
        this.logger.error({
          msg: 'Postgres unreachable; serving what needs no database, retrying in the background',
          error: error instanceof Error ? error.message : String(error),
        });
      // Connected, then failed (a boot migration): closed, so the next attempt starts over.
      if (this.dataSource.isInitialized) await this.dataSource.destroy().catch(() => undefined);
      if (this.stopped) return;
      this.timer = setTimeout(
        () => void this.attempt(Math.min(MAX_RETRY_MS, nextWaitMs * 2), attempt + 1),
        nextWaitMs,
      );
      this.timer.unref();
    }
  }
}

// Connection-level failures of node-postgres and Postgres (admin shutdown, cannot connect now,
// connection failure): the database is away, not the request wrong.
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  '57P01',
  '57P03',
  '08000',
  '08001',
  '08003',
  '08006',
]);
const UNAVAILABLE_MESSAGE =
  /^(Driver not Connected|Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error)/;

/**
 * Whether `error` says Postgres is unreachable (not connected yet, or its connection failed), so a
 * request that needed it should be answered 503, not 500.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && UNAVAILABLE_CODES.has(code)) return true;
  return UNAVAILABLE_MESSAGE.test(error.message);
}
