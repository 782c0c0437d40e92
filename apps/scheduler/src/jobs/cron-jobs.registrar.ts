import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { CronJob } from 'cron';
import { Counter, type Registry } from 'prom-client';
import { AdminErrorReporter } from '@once/mail';
import {
  APP_CONFIG,
  jobEventId,
  JobMessage,
  JobName,
  jobPeriod,
  jobPeriodBounds,
  JobPublisher,
  jobSchedules,
  latestSlot,
  METRICS_REGISTRY,
  PublishResult,
  dueSlots,
  TICK_TOLERANCE_MS,
} from '@once/platform';
import { SchedulerConfig } from '../config/scheduler.config';

export { jobSchedules };

/** Periods remembered per job as enqueued (a day's worth of per-second test crons is far below). */
const REMEMBERED_PERIODS = 64;

/** Reported to the admins once per period that ended without its job enqueued. */
export class JobPeriodMissedError extends Error {
  constructor(
    readonly job: JobName,
    readonly period: string,
    cause: unknown,
  ) {
    super(`${job} for period ${period} was never enqueued: ${String(cause)}`);
    this.name = 'JobPeriodMissedError';
  }
}

/** A period that fell due and is not known to be enqueued yet. */
interface PendingPeriod {
  job: JobName;
  period: string;
  slot: Date;
  trigger: JobMessage['trigger'];
  /** When the period ends: retries stop there and the period counts as missed. */
  end: Date;
  attempts: number;
  timer?: NodeJS.Timeout;
  lastError?: unknown;
}

/** What the scheduler knows about its jobs, for tests and diagnostics. */
export interface SchedulerStatus {
  pending: Array<{ job: JobName; period: string; slot: string; attempts: number; lastError?: string }>;
  missed: Array<{ job: JobName; period: string }>;
}

/**
 * Registers one cron job per scheduled job and makes sure every period that falls due is
 * enqueued once:
 * - a tick derives its slots from the tick's clock (every slot after the last one it accounted
 *   for, up to now), so a stalled event loop or a late timer loses no slot; skipped ticks are
 *   logged and counted (`once_scheduler_skipped_slots_total`);
 * - each period is published by its latest due slot (the publisher's keys derive from the
 *   period, so every slot, catch-up and manual trigger of it collapses into one job);
 * - a failed publish (Redis or SQS down) is retried with jittered exponential backoff until the
 *   period ends; a period that ends unpublished is counted (`once_scheduler_missed_periods_total`)
 *   and reported to the admins, once;
 * - catch-up runs at boot and every `SCHEDULER_CATCH_UP_INTERVAL_MS`.
 * The in-process memory is what this replica tried; Redis SET NX (in {@link JobPublisher}) stays
 * the claim across replicas.
 */
@Injectable()
export class CronJobsRegistrar implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(CronJobsRegistrar.name);
  private readonly lastSlot = new Map<JobName, Date>();
  private readonly enqueued = new Map<JobName, string[]>();
  private readonly pending = new Map<string, PendingPeriod>();
  private readonly missed = new Map<string, { job: JobName; period: string }>();
  private readonly attempts = new Set<Promise<void>>();
  private catchUpTimer?: NodeJS.Timeout;
  private stopping = false;
  private readonly missedPeriods: Counter;
  private readonly skippedSlots: Counter;
  private readonly publishFailures: Counter;

  constructor(
    private readonly registry: SchedulerRegistry,
    private readonly publisher: JobPublisher,
    private readonly reporter: AdminErrorReporter,
    @Inject(APP_CONFIG) private readonly config: SchedulerConfig,
    @Inject(METRICS_REGISTRY) metrics: Registry,
  ) {
    const counter = (name: string, help: string) =>
      new Counter({ name, help, labelNames: ['job'], registers: [metrics] });
    this.missedPeriods = counter(
      'once_scheduler_missed_periods_total',
      'Job periods that ended without their job enqueued',
    );
    this.skippedSlots = counter(
      'once_scheduler_skipped_slots_total',
      'Scheduled slots whose cron tick never ran (published by a later tick)',
    );
    this.publishFailures = counter(
      'once_scheduler_publish_failures_total',
      'Failed attempts to enqueue a job',
    );
  }

  async onApplicationBootstrap(): Promise<void> {
    const schedules = this.schedules();
    for (const [name, cron] of schedules) this.schedule(name, cron);
    if (!this.config.SCHEDULER_CATCH_UP) return;
    await this.catchUp();
    const every = this.config.SCHEDULER_CATCH_UP_INTERVAL_MS;
    if (every > 0 && schedules.length > 0) {
      this.catchUpTimer = setInterval(() => void this.catchUp(), every);
      this.catchUpTimer.unref();
    }
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopping = true;
    clearInterval(this.catchUpTimer);
    for (const state of this.pending.values()) clearTimeout(state.timer);
    await Promise.allSettled([...this.attempts]);
  }

  /**
   * Publishes the period of one slot now, once (no retry): tests and the in-process platform
   * use it. A period already enqueued comes back as a duplicate.
   */
  async fire(job: JobName, slot: Date, trigger: JobMessage['trigger'] = 'cron'): Promise<PublishResult> {
    const result = await this.publisher.publish(job, slot, trigger);
    if (this.isSettled(result)) this.remember(job, jobPeriod(job, slot, this.config.SCHEDULER_TIMEZONE));
    return result;
  }

  /** Periods still being retried and periods missed, as this replica saw them. */
  status(): SchedulerStatus {
    return {
      pending: [...this.pending.values()].map((state) => ({
        job: state.job,
        period: state.period,
        slot: state.slot.toISOString(),
        attempts: state.attempts,
        lastError: state.lastError === undefined ? undefined : String(state.lastError),
      })),
      missed: [...this.missed.values()],
    };
  }

  /**
   * For each job, the latest slot within the catch-up window is published if its period is not
   * known to be enqueued. A period that already ended is not sent late: if nobody enqueued it, it
   * counts as missed.
   */
  async catchUp(now = new Date()): Promise<void> {
    const windowMs = this.config.SCHEDULER_CATCH_UP_WINDOW_HOURS * 3_600_000;
    const firsts: Array<Promise<void>> = [];
    for (const [job, cron] of this.schedules()) {
      const slot = latestSlot(cron, this.config.SCHEDULER_TIMEZONE, now, windowMs);
      if (!slot) continue;
      const period = jobPeriod(job, slot, this.config.SCHEDULER_TIMEZONE);
      if (this.isEnqueued(job, period) || this.pending.has(`${job}:${period}`)) continue;
      const { end } = jobPeriodBounds(job, slot, this.config.SCHEDULER_TIMEZONE);
      if (end.getTime() > now.getTime()) firsts.push(this.due(job, slot, 'catch-up'));
      else firsts.push(this.checkEnded(job, period, slot));
    }
    await Promise.all(firsts);
  }

  private schedules(): Array<[JobName, string]> {
    return (Object.entries(jobSchedules(this.config)) as Array<[JobName, string]>).filter(
      ([, cron]) => cron !== 'off',
    );
  }

  private schedule(job: JobName, cron: string): void {
    this.lastSlot.set(job, new Date());
    const cronJob = CronJob.from({
      cronTime: cron,
      timeZone: this.config.SCHEDULER_TIMEZONE,
      onTick: () => this.tick(job, cron),
    });
    this.registry.addCronJob(job, cronJob);
    cronJob.start();
    this.logger.log({ msg: 'scheduled', job, cron, next: cronJob.nextDate().toJSDate().toISOString() });
  }

  /**
   * Everything that fell due since the last slot this replica accounted for, by the tick's clock.
   * Cheap after any stall ({@link dueSlots} bounds cron's arithmetic): the skipped count is exact
   * for short gaps and a lower bound after long ones.
   */
  private tick(job: JobName, cron: string): void {
    const after = this.lastSlot.get(job) ?? new Date();
    const until = new Date(Date.now() + TICK_TOLERANCE_MS);
    const due = dueSlots(job, cron, this.config.SCHEDULER_TIMEZONE, after, until);
    if (!due.last) return;
    this.lastSlot.set(job, due.last);
    const skipped = due.count - 1;
    if (skipped > 0) {
      this.skippedSlots.inc({ job }, skipped);
      this.logger.warn({
        msg: 'cron ticks skipped; their periods are published by this tick',
        job,
        skipped,
        skippedExact: due.exact,
        since: after.toISOString(),
        tick: due.last.toISOString(),
      });
    }
    for (const slot of due.latestOfPeriods) void this.due(job, slot, 'cron');
  }

  /** Starts publishing the period of `slot` unless it is enqueued or already being retried. */
  private due(job: JobName, slot: Date, trigger: JobMessage['trigger']): Promise<void> {
    const period = jobPeriod(job, slot, this.config.SCHEDULER_TIMEZONE);
    const key = `${job}:${period}`;
    if (this.stopping || this.isEnqueued(job, period) || this.pending.has(key)) return Promise.resolve();
    const { end } = jobPeriodBounds(job, slot, this.config.SCHEDULER_TIMEZONE);
    const state: PendingPeriod = { job, period, slot, trigger, end, attempts: 0 };
    this.pending.set(key, state);
    return this.attempt(state);
  }

  private attempt(state: PendingPeriod): Promise<void> {
    const run = this.tryPublish(state);
    this.attempts.add(run);
    void run.finally(() => this.attempts.delete(run));
    return run;
  }

  private async tryPublish(state: PendingPeriod): Promise<void> {
    const key = `${state.job}:${state.period}`;
    if (this.stopping) return void this.pending.delete(key);
    if (Date.now() >= state.end.getTime()) return this.miss(state);
    state.attempts++;
    try {
      const result = await this.publisher.publish(state.job, state.slot, state.trigger);
      if (this.isSettled(result)) {
        this.pending.delete(key);
        this.remember(state.job, state.period);
        if (state.attempts > 1)
          this.logger.log({
            msg: 'job enqueued after retries',
            ...this.fields(state),
            status: result.status,
          });
        return;
      }
      // Another replica holds the claim but has not enqueued yet: it may have crashed mid-send.
      state.lastError = new Error(`claim held by ${result.status === 'duplicate' ? result.enqueuedBy : '?'}`);
    } catch (error) {
      state.lastError = error;
      this.publishFailures.inc({ job: state.job });
      if (state.attempts === 1) this.failed(state, error);
      else this.logger.warn({ msg: 'job enqueue retry failed', ...this.fields(state), err: String(error) });
    }
    if (this.stopping) return void this.pending.delete(key);
    const delay = Math.min(this.backoff(state.attempts), Math.max(state.end.getTime() - Date.now(), 0));
    state.timer = setTimeout(() => void this.attempt(state), delay);
    state.timer.unref();
  }

  /** Full-jitter exponential backoff: uniform in [base·2ⁿ⁻¹ / 2, base·2ⁿ⁻¹], capped. */
  private backoff(attempt: number): number {
    const ceiling = Math.min(
      this.config.SCHEDULER_RETRY_MAX_MS,
      this.config.SCHEDULER_RETRY_BASE_MS * 2 ** Math.min(attempt - 1, 30),
    );
    return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
  }

  /** A period whose latest slot fell in the catch-up window but which ended: missed unless enqueued. */
  private async checkEnded(job: JobName, period: string, slot: Date): Promise<void> {
    const key = `${job}:${period}`;
    if (this.missed.has(key)) return;
    const enqueued = await this.publisher.isEnqueued(job, slot).catch(() => undefined);
    if (enqueued === true) return this.remember(job, period);
    if (enqueued === undefined) {
      this.logger.warn({ msg: 'could not tell whether an ended period was enqueued', job, period });
      return;
    }
    this.miss({ job, period, slot, trigger: 'catch-up', end: new Date(), attempts: 0 });
  }

  private miss(state: PendingPeriod): void {
    const key = `${state.job}:${state.period}`;
    this.pending.delete(key);
    if (this.missed.has(key)) return;
    this.missed.set(key, { job: state.job, period: state.period });
    this.missedPeriods.inc({ job: state.job });
    const error = new JobPeriodMissedError(
      state.job,
      state.period,
      state.lastError ?? 'no attempt succeeded',
    );
    this.logger.error({ msg: 'job period missed', ...this.fields(state), err: String(state.lastError) });
    void this.reporter.reportJobFailure(error, { ...this.fields(state), missed: true });
  }

  private failed(state: PendingPeriod, error: unknown): void {
    this.logger.error({
      msg: 'job enqueue failed; retrying until the period ends',
      ...this.fields(state),
      err: String(error),
    });
    void this.reporter.reportJobFailure(error, this.fields(state));
  }

  private fields(state: PendingPeriod) {
    return {
      job: state.job,
      period: state.period,
      slot: state.slot.toISOString(),
      eventId: jobEventId(state.job, state.period),
      attempts: state.attempts,
      periodEnds: state.end.toISOString(),
    };
  }

  /** Enqueued, or a duplicate of a period some publisher finished enqueueing (not one mid-send or released). */
  private isSettled(result: PublishResult): boolean {
    return result.status === 'enqueued' || (result.enqueuedBy?.startsWith('enqueued:') ?? false);
  }

  private isEnqueued(job: JobName, period: string): boolean {
    return this.enqueued.get(job)?.includes(period) ?? false;
  }

  private remember(job: JobName, period: string): void {
    const periods = this.enqueued.get(job) ?? [];
    if (!periods.includes(period)) periods.push(period);
    this.enqueued.set(job, periods.slice(-REMEMBERED_PERIODS));
  }
}
