import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import {
  DynamicModule,
  Inject,
  Injectable,
  Logger,
  Module,
  OnApplicationShutdown,
  Optional,
} from '@nestjs/common';
import type Redis from 'ioredis';
import { APP_CONFIG } from '../config/app-config.module';
import type { AwsEnv, SchedulesEnv } from '../config/config.schemas';
import { jobEventId, JobMessage, jobMessageSchema, JobName, legacyJobEventId } from '../messages/job.message';
import { REDIS_CLIENT } from '../redis/redis.module';
import { createSqsClient, resolveQueueUrl } from '../sqs/sqs-client.factory';
import { recentSlots } from './cron-slots';
import { jobPeriod, jobPeriodBounds } from './job-period';
import { jobSchedules } from './job-schedule';

export interface JobPublisherOptions {
  aws: AwsEnv;
  /** Jobs queue name or URL. */
  jobsQueue: string;
  keyPrefix: string;
  /** `SCHEDULER_TIMEZONE`: the zone whose calendar names a slot's period. */
  timeZone: string;
  /** How long an enqueued period is remembered (must exceed a month plus any catch-up window). */
  rememberMs?: number;
  /** How long a publisher may hold a slot before another may try (covers a crash mid-send). */
  leaseMs?: number;
  /**
   * Each job's cron (or `off`), to find the pre-period claims of a period's earlier slots;
   * defaults to DIGEST_CRON / REMINDER_CRON of the app's config.
   */
  schedules?: Record<JobName, string>;
}

/**
 * Pre-period claims looked up per publish: the period's latest slots up to the one published
 * (a day of a per-minute cron; a denser cron's older slots are not looked at).
 */
const LEGACY_SLOTS = 1440;

export type PublishResult =
  | { status: 'enqueued'; eventId: string; messageId: string | undefined; message: JobMessage }
  | { status: 'duplicate'; eventId: string; enqueuedBy: string | null };

const JOB_PUBLISHER_OPTIONS = Symbol('JOB_PUBLISHER_OPTIONS');

/**
 * Enqueues one logical job per (job, period), however many scheduler replicas, restarts, slots of
 * the period or manual triggers ask: the period is claimed in Redis with SET NX before SendMessage
 * and released if the send fails. The worker's @Idempotent consumer stays the guarantee; this
 * saves the duplicate message and the fan-out round trip in the common case.
 *
 * Deploy boundary: the slot's pre-period claim key (`enqueue:daily-digest:<slot ISO>`) is claimed
 * too, so a slot an older scheduler already enqueued (or is enqueuing) is a duplicate here, and
 * an older replica still running sees this one's claim; the pre-period keys of the period's
 * earlier slots are read too (a cron firing several times a day: the older release enqueued, and
 * mailed, the period under an earlier slot).
 */
@Injectable()
export class JobPublisher implements OnApplicationShutdown {
  private readonly logger = new Logger(JobPublisher.name);
  private readonly sqs: SQSClient;
  private queueUrl?: Promise<string>;

  constructor(
    @Inject(REDIS_CLIENT) private readonly redis: Redis,
    @Inject(JOB_PUBLISHER_OPTIONS) private readonly options: JobPublisherOptions,
    @Optional() @Inject(APP_CONFIG) private readonly appConfig?: Partial<SchedulesEnv>,
  ) {
    this.sqs = createSqsClient(options.aws);
  }

  /** Publishes the period of `slot`; a period already enqueued comes back as a duplicate. */
  async publish(
    job: JobName,
    slot: Date,
    trigger: JobMessage['trigger'],
    by: string = trigger,
  ): Promise<PublishResult> {
    const period = jobPeriod(job, slot, this.options.timeZone);
    const eventId = jobEventId(job, period);
    const key = this.claimKey(eventId);
    const legacyKey = this.claimKey(legacyJobEventId(job, slot));
    const leaseMs = this.options.leaseMs ?? 60_000;
    const rememberMs = this.options.rememberMs ?? 45 * 86_400_000;
    const claimed = await this.redis.set(key, `pending:${by}`, 'PX', leaseMs, 'NX');
    if (claimed !== 'OK') {
      const holder = await this.redis.get(key);
      this.logger.log({ msg: 'job period already enqueued', job, eventId, slot, trigger, holder });
      return { status: 'duplicate', eventId, enqueuedBy: holder };
    }
    const earlier = await this.earlierLegacyKeys(job, slot);
    const earlierHolders =
      earlier.length > 0
        ? await this.redis.mget(...earlier).catch(async (error) => {
            await this.redis.del(key).catch(() => undefined);
            throw error;
          })
        : [];
    const earlierHolder =
      earlierHolders.find((holder) => holder?.startsWith('enqueued:')) ??
      earlierHolders.find((holder) => holder);
    if (earlierHolder || (await this.redis.set(legacyKey, `pending:${by}`, 'PX', leaseMs, 'NX')) !== 'OK') {
      const holder = earlierHolder ?? (await this.redis.get(legacyKey));
      if (holder?.startsWith('enqueued:')) {
        const enqueuedBy = `enqueued:legacy:${holder.slice('enqueued:'.length)}`;
        await this.redis.set(key, enqueuedBy, 'PX', rememberMs);
        this.logger.log({ msg: 'job slot enqueued before periods', job, eventId, slot, trigger, holder });
        return { status: 'duplicate', eventId, enqueuedBy };
      }
      // An older publisher is sending this slot right now: ask again once it is done or gone.
      await this.redis.del(key);
      this.logger.log({ msg: 'job slot being enqueued by an older publisher', job, eventId, slot, holder });
      return { status: 'duplicate', eventId, enqueuedBy: holder };
    }
    const message: JobMessage = jobMessageSchema.parse({
      eventId,
      job,
      slot: slot.toISOString(),
      period,
      firedAt: new Date().toISOString(),
      trigger,
    });
    let messageId: string | undefined;
    try {
      this.queueUrl ??= resolveQueueUrl(this.sqs, this.options.jobsQueue);
      ({ MessageId: messageId } = await this.sqs.send(
        new SendMessageCommand({ QueueUrl: await this.queueUrl, MessageBody: JSON.stringify(message) }),
      ));
    } catch (error) {
      this.queueUrl = undefined;
      await this.redis.del(key, legacyKey).catch(() => undefined);
      throw error;
    }
    const enqueued = `enqueued:${by}:${messageId}`;
    // The job is on the queue: a Redis failure now only leaves the claim to its lease (a later
    // publish may send a copy, which the worker's @Idempotent turns away), never a lost job.
    await this.redis
      .multi()
      .set(key, enqueued, 'PX', rememberMs)
      .set(legacyKey, enqueued, 'PX', rememberMs)
      .exec()
      .catch((error: unknown) =>
        this.logger.warn({ msg: 'job enqueued; its claim was not recorded', eventId, err: String(error) }),
      );
    this.logger.log({ msg: 'job enqueued', job, eventId, slot, messageId, trigger });
    return { status: 'enqueued', eventId, messageId, message };
  }

  /**
   * Whether the period of `slot` (or, from before periods, the slot itself) was enqueued by some
   * publisher. Rejects when Redis cannot be asked.
   */
  async isEnqueued(job: JobName, slot: Date): Promise<boolean> {
    const period = jobPeriod(job, slot, this.options.timeZone);
    const holders = await this.redis.mget(
      this.claimKey(jobEventId(job, period)),
      this.claimKey(legacyJobEventId(job, slot)),
      ...(await this.earlierLegacyKeys(job, slot)),
    );
    return holders.some((holder) => holder?.startsWith('enqueued:'));
  }

  /** The pre-period claim keys of the scheduled slots of `slot`'s period before it (newest {@link LEGACY_SLOTS}). */
  private async earlierLegacyKeys(job: JobName, slot: Date): Promise<string[]> {
    const schedules =
      this.options.schedules ??
      (this.appConfig?.DIGEST_CRON && this.appConfig.REMINDER_CRON
        ? jobSchedules(this.appConfig as SchedulesEnv)
        : undefined);
    const cron = schedules?.[job];
    if (!cron || cron === 'off') return [];
    const { start } = jobPeriodBounds(job, slot, this.options.timeZone);
    const slots = await recentSlots(
      cron,
      this.options.timeZone,
      start,
      new Date(slot.getTime() - 1),
      LEGACY_SLOTS,
    );
    return slots.map((earlier) => this.claimKey(legacyJobEventId(job, earlier)));
  }

  private claimKey(eventId: string): string {
    return `${this.options.keyPrefix}enqueue:${eventId}`;
  }

  onApplicationShutdown(): void {
    this.sqs.destroy();
  }
}

/** Provides {@link JobPublisher} (needs the global REDIS_CLIENT). */
@Module({})
export class JobPublisherModule {
  static forRoot(options: JobPublisherOptions): DynamicModule {
    return {
      module: JobPublisherModule,
      providers: [{ provide: JOB_PUBLISHER_OPTIONS, useValue: options }, JobPublisher],
      exports: [JobPublisher],
    };
  }
}
