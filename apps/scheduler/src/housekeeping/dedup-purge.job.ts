import { Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { CronJob } from 'cron';
import { IdempotencyService } from '@once/dedup';
import { AdminErrorReporter } from '@once/mail';
import { APP_CONFIG } from '@once/platform';
import { SchedulerConfig } from '../config/scheduler.config';

/** Name of the cron job in the SchedulerRegistry and in logs and error reports. */
export const DEDUP_PURGE_JOB = 'dedup-purge';
/** Rows deleted per statement: short transactions, so workers' claims are never held up for long. */
export const DEDUP_PURGE_BATCH = 1000;
/** Statements per run: a large backlog is worked off over several runs rather than in one long one. */
export const DEDUP_PURGE_MAX_BATCHES = 100;

/**
 * Deletes expired dedup records from Postgres on `DEDUP_PURGE_CRON` (Redis expires its own).
 * Replicas may overlap: the purge skips rows another one has locked.
 */
@Injectable()
export class DedupPurgeJob implements OnApplicationBootstrap {
  private readonly logger = new Logger(DedupPurgeJob.name);

  constructor(
    private readonly registry: SchedulerRegistry,
    private readonly idempotency: IdempotencyService,
    private readonly reporter: AdminErrorReporter,
    @Inject(APP_CONFIG) private readonly config: SchedulerConfig,
  ) {}

  onApplicationBootstrap(): void {
    const cron = this.config.DEDUP_PURGE_CRON;
    if (cron === 'off') return;
    const job = CronJob.from({
      cronTime: cron,
      timeZone: this.config.SCHEDULER_TIMEZONE,
      waitForCompletion: true,
      onTick: async () => {
        await this.run().catch((error: unknown) => this.failed(error));
      },
    });
    this.registry.addCronJob(DEDUP_PURGE_JOB, job);
    job.start();
    this.logger.log({
      msg: 'scheduled',
      job: DEDUP_PURGE_JOB,
      cron,
      next: job.nextDate().toJSDate().toISOString(),
    });
  }

  /** Purges expired records batch by batch until none is left (or the batch cap). Returns how many. */
  async run(): Promise<number> {
    let deleted = 0;
    for (let batch = 0; batch < DEDUP_PURGE_MAX_BATCHES; batch++) {
      const purged = await this.idempotency.purgeExpired(DEDUP_PURGE_BATCH);
      deleted += purged;
      if (purged < DEDUP_PURGE_BATCH) break;
    }
    if (deleted > 0) this.logger.log({ msg: 'expired dedup records purged', job: DEDUP_PURGE_JOB, deleted });
    return deleted;
  }

  private failed(error: unknown): void {
    this.logger.error({ msg: 'dedup purge failed', job: DEDUP_PURGE_JOB, err: String(error) });
    void this.reporter.reportJobFailure(error, { job: DEDUP_PURGE_JOB });
  }
}
