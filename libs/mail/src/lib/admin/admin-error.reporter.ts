import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { MAIL_OPTIONS, type ResolvedMailOptions } from '../mail.options';
import { MailService } from '../mail.service';
import { ADMIN_FALLBACK_BUDGET, redisCall, withLocalRateFallback } from '../rate-limit/local-fallback.budget';
import { type AdminErrorContext, renderAdminErrorMail } from './admin-error-mail.renderer';
import { describeThrown, errorFingerprint } from './error.fingerprint';
import { SecretRedactor } from './secret.redactor';

export type AdminReportStatus = 'sent' | 'throttled' | 'duplicate' | 'failed' | 'disabled';

export interface AdminReportResult {
  status: AdminReportStatus;
  fingerprint?: string;
  /** Ledger key of the mail: `admin-error:<fingerprint>:<window start>`. */
  idempotencyKey?: string;
  /** Occurrences counted (not mailed) since the previous report, included in this mail. */
  moreOccurrences?: number;
}

/** Failure of a queue message handler, for {@link AdminErrorReporter.reportWorkerFailure}. */
export interface WorkerFailureContext {
  handler: string;
  queue?: string;
  messageId?: string;
  receiveCount?: number;
  [detail: string]: unknown;
}

/** Failure of a scheduled job, for {@link AdminErrorReporter.reportJobFailure}. */
export interface JobFailureContext {
  job: string;
  slot?: string;
  eventId?: string;
  [detail: string]: unknown;
}

/**
 * At most one mail per fingerprint per window; later occurrences only count. KEYS: window lock,
 * counter. ARGV: lock TTL, counter TTL. Returns the count to report, or -1 when throttled.
 */
const THROTTLE_SCRIPT = `
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then
  local count = tonumber(redis.call('GET', KEYS[2]) or '0')
  redis.call('DEL', KEYS[2])
  return count
end
redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return -1
`;

const COUNTER_TTL_MS = 7 * 24 * 3_600_000;

/**
 * Mails unhandled errors to the admins (Django's ADMINS + AdminEmailHandler): redacted, throttled
 * per error fingerprint through Redis, and sent through the ledger with key
 * `admin-error:<fingerprint>:<window>`. Never throws, and its own failures are only logged. When
 * Redis is down it still mails: the throttle falls back to the ledger key (one mail per fingerprint
 * and window) and the send rate to an in-process budget (`ADMIN_FALLBACK_BUDGET` per process).
 */
@Injectable()
export class AdminErrorReporter implements OnApplicationShutdown {
  private readonly logger = new Logger(AdminErrorReporter.name);
  private readonly redactor: SecretRedactor;
  private readonly inFlight = new Set<Promise<AdminReportResult>>();

  constructor(
    @Inject(MAIL_OPTIONS) private readonly options: ResolvedMailOptions,
    private readonly mail: MailService,
  ) {
    this.redactor = new SecretRedactor(options.adminErrors?.redact);
  }

  /** Reports an error. Resolves (never rejects) once the mail is sent, throttled or given up. */
  report(error: unknown, context: AdminErrorContext = {}): Promise<AdminReportResult> {
    const task = this.deliver(error, context).catch((failure: unknown) => {
      this.logger.error({ msg: 'admin error report failed', error: describeThrown(failure).name });
      return { status: 'failed' } as AdminReportResult;
    });
    this.inFlight.add(task);
    void task.finally(() => this.inFlight.delete(task));
    return task;
  }

  /** For queue consumers: call from the handler's catch (HTTP filters never see these errors). */
  reportWorkerFailure(error: unknown, context: WorkerFailureContext): Promise<AdminReportResult> {
    return this.report(error, { source: 'worker', details: { ...context } });
  }

  /** For scheduled jobs: call from the job's catch. */
  reportJobFailure(error: unknown, context: JobFailureContext): Promise<AdminReportResult> {
    return this.report(error, { source: 'scheduler', details: { ...context } });
  }

  /** Waits for reports still being sent (tests, shutdown). */
  async flush(): Promise<void> {
    await Promise.all([...this.inFlight]);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.flush();
  }

  private async deliver(error: unknown, context: AdminErrorContext): Promise<AdminReportResult> {
    const admin = this.options.adminErrors;
    const { name, message } = describeThrown(error);
    if (!admin) {
      this.logger.error({
        msg: 'unhandled error (admin error mail is not configured)',
        error: name,
        message: this.redactor.redactString(message),
      });
      return { status: 'disabled' };
    }

    const scope = [
      context.source ?? 'app',
      context.request?.method,
      context.request?.route ?? context.request?.url?.split('?')[0],
      typeof context.details?.['handler'] === 'string' ? context.details['handler'] : undefined,
      typeof context.details?.['job'] === 'string' ? context.details['job'] : undefined,
    ]
      .filter(Boolean)
      .join(' ');
    const fingerprint = errorFingerprint(error, scope);
    const occurredAt = this.options.clock();
    const windowStart = new Date(Math.floor(occurredAt.getTime() / admin.windowMs) * admin.windowMs);
    const idempotencyKey = `admin-error:${fingerprint}:${windowStart.toISOString()}`;

    const moreOccurrences = await this.throttle(fingerprint, windowStart, admin.windowMs);
    if (moreOccurrences < 0) return { status: 'throttled', fingerprint, idempotencyKey };

    const { subject, text } = renderAdminErrorMail(
      { error, context, fingerprint, occurredAt, moreOccurrences },
      admin,
      this.redactor,
    );
    // Admin mail often reports the Redis outage itself: the shared limiter may fall back to an
    // in-process budget so the report still goes out.
    const result = await withLocalRateFallback(ADMIN_FALLBACK_BUDGET, () =>
      this.mail.send({ idempotencyKey, to: admin.recipients, from: admin.from, subject, text }),
    );
    const status: AdminReportStatus =
      result.status === 'sent' ? 'sent' : result.status === 'duplicate' ? 'duplicate' : 'failed';
    if (status === 'failed') {
      this.logger.error({
        msg: 'admin error mail not sent',
        idempotencyKey,
        mailStatus: result.status,
        error: result.error,
      });
    } else {
      this.logger.log({
        msg: 'admin error mail',
        status,
        idempotencyKey,
        sesMessageId: result.sesMessageId,
        moreOccurrences,
      });
    }
    return { status, fingerprint, idempotencyKey, moreOccurrences };
  }

  /** Count of unmailed occurrences to include, or -1 when this occurrence must not be mailed. */
  private async throttle(fingerprint: string, windowStart: Date, windowMs: number): Promise<number> {
    const prefix = `${this.options.redisKeyPrefix}admin-error:${fingerprint}`;
    try {
      const reply = await redisCall(this.options.redis, () =>
        this.options.redis.eval(
          THROTTLE_SCRIPT,
          2,
          `${prefix}:window:${windowStart.getTime()}`,
          `${prefix}:unreported`,
          windowMs * 2,
          COUNTER_TTL_MS,
        ),
      );
      return Number(reply);
    } catch (error) {
      // Without Redis the ledger key still limits mail to one per fingerprint and window.
      this.logger.warn({
        msg: 'admin error throttle unavailable; relying on the ledger',
        error: (error as Error).message,
      });
      return 0;
    }
  }
}
