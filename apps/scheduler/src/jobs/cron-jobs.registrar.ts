import { Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { CronJob } from 'cron';
import { AdminErrorReporter } from '@once/mail';
import {
  APP_CONFIG,
  jobEventId,
  JobMessage,
  JobName,
  JobPublisher,
  latestSlot,
  PublishResult,
} from '@once/platform';
import { SchedulerConfig } from '../config/scheduler.config';

/** The cron expression of each job, from config. */
export function jobSchedules(config: SchedulerConfig): Record<JobName, string> {
  return { 'daily-digest': config.DIGEST_CRON, 'monthly-reminder': config.REMINDER_CRON };
}

/**
 * Registers one @nestjs/schedule cron job per scheduled job. Every fire is published under a
 * slot id derived from the scheduled instant (not the tick's wall clock), so replicas, restarts,
 * catch-up and manual triggers of the same slot collapse into one enqueued job.
 */
@Injectable()
export class CronJobsRegistrar implements OnApplicationBootstrap {
  private readonly logger = new Logger(CronJobsRegistrar.name);

  constructor(
    private readonly registry: SchedulerRegistry,
    private readonly publisher: JobPublisher,
    private readonly reporter: AdminErrorReporter,
    @Inject(APP_CONFIG) private readonly config: SchedulerConfig,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const schedules = Object.entries(jobSchedules(this.config)) as Array<[JobName, string]>;
    for (const [name, cron] of schedules) {
      if (cron !== 'off') this.schedule(name, cron);
    }
    if (!this.config.SCHEDULER_CATCH_UP) return;
    const windowMs = this.config.SCHEDULER_CATCH_UP_WINDOW_HOURS * 3_600_000;
    for (const [name, cron] of schedules) {
      const slot =
        cron === 'off' ? undefined : latestSlot(cron, this.config.SCHEDULER_TIMEZONE, new Date(), windowMs);
      if (slot)
        await this.fire(name, slot, 'catch-up').catch((error: unknown) => this.failed(name, slot, error));
    }
  }

  /** Publishes one slot of a job; a slot already enqueued comes back as a duplicate. */
  fire(job: JobName, slot: Date, trigger: JobMessage['trigger'] = 'cron'): Promise<PublishResult> {
    return this.publisher.publish(job, slot, trigger);
  }

  private schedule(name: JobName, cron: string): void {
    let slot: Date;
    const job = CronJob.from({
      cronTime: cron,
      timeZone: this.config.SCHEDULER_TIMEZONE,
      waitForCompletion: true,
      onTick: async () => {
        const due = slot;
        slot = job.nextDate().toJSDate();
        await this.fire(name, due).catch((error: unknown) => this.failed(name, due, error));
      },
    });
    slot = job.nextDate().toJSDate();
    this.registry.addCronJob(name, job);
    job.start();
    this.logger.log({ msg: 'scheduled', job: name, cron, next: slot.toISOString() });
  }

  private failed(job: JobName, slot: Date, error: unknown): void {
    this.logger.error({ msg: 'job enqueue failed', job, slot: slot.toISOString(), err: String(error) });
    void this.reporter.reportJobFailure(error, {
      job,
      slot: slot.toISOString(),
      eventId: jobEventId(job, slot),
    });
  }
}
