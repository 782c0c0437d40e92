import { randomUUID } from 'node:crypto';
import {
  type BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { MAIL_OPTIONS, type ResolvedAdminErrorOptions, type ResolvedMailOptions } from '../mail.options';
import { MailService } from '../mail.service';
import type { MailSendResult } from '../mail.types';
import {
  type AdminErrorBudgetStore,
  type AdminErrorSummary,
  type AdmitRequest,
  type AdmitResult,
  LocalAdminErrorBudget,
  RedisAdminErrorBudget,
} from '../rate-limit/admin-error.budget';
import { withLocalRateFallback, withoutRecipientCap } from '../rate-limit/local-fallback.budget';
import { renderAdminErrorSummary } from './admin-error-summary.renderer';
import {
  type AdminErrorContext,
  type AdminErrorMailInput,
  renderAdminErrorMail,
  renderUnrenderableErrorMail,
} from './admin-error-mail.renderer';
import { describeThrown, errorFingerprint } from './error.fingerprint';
import { SecretRedactor } from './secret.redactor';

/**
 * `throttled`: this fingerprint was mailed in its window already (counted into its next mail);
 * `summarised`: the window's admin mail budget is used up (counted into the window's summary mail).
 */
export type AdminReportStatus = 'sent' | 'throttled' | 'summarised' | 'duplicate' | 'failed' | 'disabled';

export interface AdminReportResult {
  status: AdminReportStatus;
  fingerprint?: string;
  /** Ledger key of the mail: `admin-error:<fingerprint>:<window start>`. */
  idempotencyKey?: string;
  /** Occurrences counted (not mailed) since the previous report, included in this mail. */
  moreOccurrences?: number;
  /** `summarised`: ledger key of the window's summary mail, `admin-error-summary:<window start>`. */
  summaryKey?: string;
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

/** How long after a budget window ends its summary timer fires: room for reports stamped just before the end. */
export const SUMMARY_GRACE_MS = 2_000;

/**
 * Mails unhandled errors to the admins (Django's ADMINS + AdminEmailHandler): redacted, throttled
 * per error fingerprint, and sent through the ledger with key `admin-error:<fingerprint>:<window>`.
 * Admin mail has a budget of its own (`adminErrors.budget`, counted in Redis across processes) and
 * skips the per-recipient cap of user mail; past the budget errors are counted into one summary
 * mail per budget window (`admin-error-summary:<window start>`), sent by whichever process first
 * sees the window over (its first report after it, or the timer of a process that counted into it;
 * at shutdown the process sends what it counted). Never throws, and its own failures are only
 * logged. When Redis is down the same budget and summary are kept in this process, and the send
 * rate falls back to an in-process budget.
 */
@Injectable()
export class AdminErrorReporter implements BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger = new Logger(AdminErrorReporter.name);
  private readonly redactor: SecretRedactor;
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly shared?: RedisAdminErrorBudget;
  private readonly local?: LocalAdminErrorBudget;
  /** Budget windows this process counted into, each with the timer that sends its summary. */
  private readonly summaryTimers = new Map<number, NodeJS.Timeout>();
  /** Budget windows whose exhaustion / Redis fallback this process has logged (one warning per window). */
  private readonly loggedExhausted = new Set<number>();
  private readonly loggedFallback = new Set<number>();
  private readonly instanceId = randomUUID().slice(0, 8);
  private stopping = false;

  constructor(
    @Inject(MAIL_OPTIONS) private readonly options: ResolvedMailOptions,
    private readonly mail: MailService,
  ) {
    const admin = options.adminErrors;
    this.redactor = new SecretRedactor(admin?.redact);
    if (admin) {
      this.shared = new RedisAdminErrorBudget(options.redis, options.redisKeyPrefix, admin.budget);
      this.local = new LocalAdminErrorBudget(admin.budget);
    }
  }

  /** Reports an error. Resolves (never rejects) once the mail is sent, throttled, summarised or given up. */
  report(error: unknown, context: AdminErrorContext = {}): Promise<AdminReportResult> {
    return this.track(
      this.deliver(error, context).catch((failure: unknown) => {
        this.logger.error({ msg: 'admin error report failed', error: describeThrown(failure).name });
        return { status: 'failed' } as AdminReportResult;
      }),
    );
  }

  /** A value as admin error mail would show it (secrets hidden), for log lines about the same error. */
  redact(value: unknown): unknown {
    return this.redactor.redact(value);
  }

  /** For queue consumers: call from the handler's catch (HTTP filters never see these errors). */
  reportWorkerFailure(error: unknown, context: WorkerFailureContext): Promise<AdminReportResult> {
    return this.report(error, { source: 'worker', details: { ...context } });
  }

  /** For scheduled jobs: call from the job's catch. */
  reportJobFailure(error: unknown, context: JobFailureContext): Promise<AdminReportResult> {
    return this.report(error, { source: 'scheduler', details: { ...context } });
  }

  /** Waits for reports and summaries still being sent (tests, shutdown). */
  async flush(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  /**
   * Sends the summaries of every window this process counted into, ended or not (nobody else may
   * be left to), while the ledger and Redis are still open.
   */
  async beforeApplicationShutdown(): Promise<void> {
    this.stopping = true;
    await this.flush();
    for (const timer of this.summaryTimers.values()) clearTimeout(timer);
    const windows = new Set([...this.summaryTimers.keys(), ...(this.local?.windowsWithCounts() ?? [])]);
    this.summaryTimers.clear();
    await Promise.all([...windows].map((windowStart) => this.track(this.sendSummaries(windowStart))));
  }

  async onApplicationShutdown(): Promise<void> {
    await this.flush();
  }

  private track<T>(task: Promise<T>): Promise<T> {
    this.inFlight.add(task);
    void task.finally(() => this.inFlight.delete(task));
    return task;
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
    const budgetWindowStart =
      Math.floor(occurredAt.getTime() / admin.budget.windowMs) * admin.budget.windowMs;

    const { admitted, store } = await this.admit({
      fingerprint,
      meta: {
        name: this.redactor.redactString(name),
        scope: this.redactor.redactString(scope),
        message: this.redactor.redactString(message).slice(0, 500),
      },
      throttleWindowStart: windowStart.getTime(),
      throttleWindowMs: admin.windowMs,
      budgetWindowStart,
    });
    for (const due of admitted.dueWindows) void this.track(this.sendSummary(store, due));
    // Counted here while Redis was down: this process alone can send those.
    if (store === this.shared) {
      for (const due of this.local?.windowsWithCounts() ?? []) {
        if (due < budgetWindowStart)
          void this.track(this.sendSummary(this.local as AdminErrorBudgetStore, due));
      }
    }

    if (admitted.verdict === 'throttled') return { status: 'throttled', fingerprint, idempotencyKey };
    if (admitted.verdict === 'summarised') {
      const summaryKey = summaryKeyOf(budgetWindowStart);
      this.scheduleSummary(budgetWindowStart);
      if (firstInWindow(this.loggedExhausted, budgetWindowStart)) {
        this.logger.warn({
          msg: 'admin error mail budget used up; further errors go into the window summary',
          budget: admin.budget.mails,
          windowMs: admin.budget.windowMs,
          summaryKey,
          store: store === this.shared ? 'redis' : 'process',
        });
      }
      return { status: 'summarised', fingerprint, summaryKey };
    }

    const moreOccurrences = admitted.moreOccurrences;
    const { subject, text } = this.render({ error, context, fingerprint, occurredAt, moreOccurrences });
    const result = await this.sendAdminMail({ idempotencyKey, subject, text });
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

  /** The mail for an admitted report; a minimal one when the thrown value defeats rendering (its budget slot and lock are taken). */
  private render(input: AdminErrorMailInput): { subject: string; text: string } {
    const admin = this.options.adminErrors as ResolvedAdminErrorOptions;
    try {
      return renderAdminErrorMail(input, admin, this.redactor);
    } catch (failure) {
      this.logger.error({
        msg: 'admin error mail could not be rendered; sending a minimal one',
        fingerprint: input.fingerprint,
        error: describeThrown(failure).name,
      });
      return renderUnrenderableErrorMail(input, admin, this.redactor);
    }
  }

  /** Counts the report in Redis, or in this process while Redis is unavailable. */
  private async admit(
    request: AdmitRequest,
  ): Promise<{ admitted: AdmitResult; store: AdminErrorBudgetStore }> {
    const shared = this.shared as RedisAdminErrorBudget;
    const local = this.local as LocalAdminErrorBudget;
    try {
      return { admitted: await shared.admit(request), store: shared };
    } catch (error) {
      if (firstInWindow(this.loggedFallback, request.budgetWindowStart)) {
        this.logger.warn({
          msg: 'admin error budget unavailable in Redis; counting in this process for this window',
          error: (error as Error).message,
        });
      }
      return { admitted: await local.admit(request), store: local };
    }
  }

  /**
   * Admin mail: not counted in or refused by the per-recipient cap (it has its own budget), and,
   * since it often reports the Redis outage itself, allowed an in-process send budget when the
   * shared limiter cannot reach Redis (the budget and a summary or two per window).
   */
  private sendAdminMail(mail: {
    idempotencyKey: string;
    subject: string;
    text: string;
  }): Promise<MailSendResult> {
    const admin = this.options.adminErrors as ResolvedAdminErrorOptions;
    const fallback = { limit: admin.budget.mails + 2, windowMs: admin.budget.windowMs };
    return withoutRecipientCap(() =>
      withLocalRateFallback(fallback, () =>
        this.mail.send({ ...mail, to: admin.recipients, from: admin.from }),
      ),
    );
  }

  /** A timer at the window's end sends its summary even if no later error comes. */
  private scheduleSummary(windowStart: number): void {
    if (this.stopping || this.summaryTimers.has(windowStart)) return;
    const admin = this.options.adminErrors as ResolvedAdminErrorOptions;
    const delay = windowStart + admin.budget.windowMs - this.options.clock().getTime() + SUMMARY_GRACE_MS;
    const timer = setTimeout(
      () => {
        this.summaryTimers.delete(windowStart);
        void this.track(this.sendSummaries(windowStart));
      },
      Math.max(0, delay),
    );
    timer.unref();
    this.summaryTimers.set(windowStart, timer);
  }

  /** Both stores' summaries of a window (the process may have counted into either). */
  private async sendSummaries(windowStart: number): Promise<void> {
    await this.sendSummary(this.shared as AdminErrorBudgetStore, windowStart);
    await this.sendSummary(this.local as AdminErrorBudgetStore, windowStart);
  }

  /** Takes the window's summary from `store` (once across processes for Redis) and mails it through the ledger. */
  private async sendSummary(store: AdminErrorBudgetStore, windowStart: number): Promise<void> {
    const admin = this.options.adminErrors as ResolvedAdminErrorOptions;
    let summary;
    try {
      summary = await store.take(windowStart);
    } catch (error) {
      // Still in Redis: the next report (after Redis is back) finds it due.
      this.logger.warn({
        msg: 'admin error summary not taken',
        windowStart,
        error: (error as Error).message,
      });
      return;
    }
    if (!summary) return;
    const base = summaryKeyOf(windowStart);
    const idempotencyKey =
      store === this.local
        ? `${base}:process-${this.instanceId}:${summary.seq}`
        : summary.seq > 1
          ? `${base}:${summary.seq}`
          : base;
    const partial = this.options.clock().getTime() < windowStart + admin.budget.windowMs;
    try {
      const { subject, text } = renderAdminErrorSummary(summary, admin, this.redactor, partial);
      const result = await this.sendAdminMail({ idempotencyKey, subject, text });
      const delivered = result.status === 'sent' || result.status === 'duplicate';
      this.logger[delivered ? 'log' : 'error']({
        msg: 'admin error summary mail',
        idempotencyKey,
        mailStatus: result.status,
        distinct: summary.distinct,
        occurrences: summary.occurrences,
        error: result.error,
      });
      if (!delivered) await this.restoreSummary(store, summary);
    } catch (error) {
      this.logger.error({
        msg: 'admin error summary mail failed',
        idempotencyKey,
        distinct: summary.distinct,
        error: describeThrown(error).name,
      });
      await this.restoreSummary(store, summary);
    }
  }

  /** Puts an unsent summary back so the next report (or timer) retries it, a few times per window. */
  private async restoreSummary(store: AdminErrorBudgetStore, summary: AdminErrorSummary): Promise<void> {
    try {
      // Put back, the window is due again: the next report after it retries.
      if (!(await store.restore(summary))) {
        this.logger.error({
          msg: 'admin error summary dropped after repeated send failures',
          windowStart: summary.windowStart,
        });
      }
    } catch (error) {
      this.logger.error({
        msg: 'admin error summary lost: not sent and not put back',
        windowStart: summary.windowStart,
        error: describeThrown(error).name,
      });
    }
  }
}

/** True the first time a window is seen; remembers the last few windows only. */
function firstInWindow(seen: Set<number>, windowStart: number): boolean {
  if (seen.has(windowStart)) return false;
  seen.add(windowStart);
  if (seen.size > 8) seen.delete(Math.min(...seen));
  return true;
}

/** Ledger key of a budget window's (first) summary mail. */
function summaryKeyOf(windowStart: number): string {
  return `admin-error-summary:${new Date(windowStart).toISOString()}`;
}
