import type { ConfigurableModuleAsyncOptions } from '@nestjs/common';
import { SESv2Client } from '@aws-sdk/client-sesv2';
import type Redis from 'ioredis';
import { z } from 'zod';
import { AddressSyntaxError, parseAddress, parseMailbox } from './address/mail-address';
import type { RedactorOptions } from './admin/secret.redactor';

export type { RedactorOptions } from './admin/secret.redactor';

/** Injection token of the validated {@link ResolvedMailOptions} (what the lib injects). */
export const MAIL_OPTIONS = Symbol('MAIL_OPTIONS');
/** Injection token of the SESv2Client the transport uses. */
export const MAIL_SES_CLIENT = Symbol('MAIL_SES_CLIENT');

/** Config for an SESv2Client the module creates (and destroys at shutdown). */
export interface SesClientConfig {
  region: string;
  /** Set for local emulators; leave unset for AWS. */
  endpoint?: string;
  /** Omit to use the default AWS credential chain. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Hard deadline of every SES call (see {@link SesClientOptions.requestTimeoutMs}). Default 15 s. */
  requestTimeoutMs?: number;
}

/** An SESv2Client the app built (and destroys). */
export interface SesClientOptions {
  /** Create it with `maxAttempts: 1`: SDK retries after a timeout or a 5xx can duplicate an email. */
  client: SESv2Client;
  /**
   * Hard deadline of every SES call, enforced with an AbortSignal whatever the client's own
   * timeouts: at the deadline the request is aborted and a send is recorded `unknown`. Default 15 s.
   */
  requestTimeoutMs?: number;
}

/** The least `staleAfterMs` may exceed the SES deadline by: room for timer lag on a busy event loop. */
export const MIN_STALE_MARGIN_MS = 1_000;

export interface MailRateLimitOptions {
  /** Emails per second for all processes together. Unset: SES `GetAccount` → `SendQuota.MaxSendRate`. */
  maxSendRate?: number;
  /** Used when `maxSendRate` is unset and `GetAccount` fails. Default 1 (the SES sandbox rate). */
  fallbackMaxSendRate?: number;
  /** Sends allowed back to back before spacing applies. Default 1. */
  burst?: number;
  /** Per-recipient cap shared by all processes; `false` disables it. Default 10 per hour. */
  perRecipient?: { limit: number; windowMs: number } | false;
  /** Longest a send waits for a slot; beyond it the send is recorded `failed` (retryable). Default 30 s. */
  maxWaitMs?: number;
}

export interface MailThrottleRetryOptions {
  /** SES calls per send when SES throttles (TooManyRequests, Throttling, LimitExceeded…). Default 4. */
  maxAttempts?: number;
  /** First backoff; doubles per attempt, with jitter. Default 250 ms. */
  baseDelayMs?: number;
  /** Default 5 s. */
  maxDelayMs?: number;
}

/**
 * How long a ledger statement waits for those of concurrent sends before it goes, in ms (0: only
 * those of the same turn of the event loop). A wait adds to each email's latency, never to SES's
 * deadline budget beyond `claimWindowMs`.
 */
export interface MailStatementBatchingOptions {
  /** First sends (`likelyNew`): their claim-and-stamp. Default 2; at most 100. */
  claimWindowMs?: number;
  /** Outcomes after the SES call. Default 5; at most 100. */
  outcomeWindowMs?: number;
}

export interface AdminErrorOptions {
  /** The ADMINS: who receives error mail. */
  recipients: string[];
  /** Defaults to the module's `defaultFrom`. */
  from?: string;
  appName: string;
  appVersion: string;
  environment?: string;
  /** At most one mail per error fingerprint per window. Default 15 min. */
  windowMs?: number;
  /** Default `[Once]`. */
  subjectPrefix?: string;
  redact?: RedactorOptions;
  /** How many error mails a window may carry; past it errors go into one summary mail. */
  budget?: AdminErrorBudgetOptions;
}

/**
 * The admin error mail budget, shared by every process on the same Redis and key prefix (per
 * process while Redis is down). It is its own: admin mail neither uses nor is refused by the
 * per-recipient cap of `rateLimit.perRecipient`.
 */
export interface AdminErrorBudgetOptions {
  /** Error mails per window, 1–1,000. Default 10. */
  mails?: number;
  /** 1 s – 24 h. Default 15 min. */
  windowMs?: number;
  /** Fingerprints the summary lists, most frequent first, 1–100. Default 10. */
  topFingerprints?: number;
}

export interface MailModuleOptions {
  /**
   * An SESv2Client, or the config to create one. Create yours with `maxAttempts: 1`: the SDK's own
   * retries resend after timeouts and 5xx responses, which can duplicate an email SES already accepted.
   */
  ses: SesClientOptions | SesClientConfig;
  /** The app's ioredis client (rate limits, admin error throttling). */
  redis: Redis;
  /** Prefix of every Redis key the module writes. Default `once:mail:`. */
  redisKeyPrefix?: string;
  defaultFrom: string;
  configurationSetName?: string;
  /**
   * A `pending` row whose SES call started longer ago than this reads as `unknown` (SES may have
   * accepted it), and an `unknown` row can be resent only this long after its SES call started.
   * Must exceed the SES deadline (`requestTimeoutMs`) by at least {@link MIN_STALE_MARGIN_MS}, so no
   * call is still open then. Default: the SES deadline + 5 s (20 s).
   */
  staleAfterMs?: number;
  /**
   * A `pending` row whose SES call has not started this long after its attempt began reads as
   * `failed` with `retryable` (its sender stopped before calling SES). Must exceed
   * `rateLimit.maxWaitMs`. Default: `rateLimit.maxWaitMs` + 5 s (35 s).
   */
  abandonedAfterMs?: number;
  rateLimit?: MailRateLimitOptions;
  throttleRetry?: MailThrottleRetryOptions;
  /** How concurrent sends share their ledger statements (see the README, "Sending"). */
  statementBatching?: MailStatementBatchingOptions;
  /** Enables {@link AdminErrorReporter}; without it reports are only logged. */
  adminErrors?: AdminErrorOptions;
  /** Clock for admin error windows. Default `() => new Date()`. */
  clock?: () => Date;
}

/** Extra options of `MailModule.forRoot`/`forRootAsync`, beside the {@link MailModuleOptions}. */
export interface MailModuleExtras {
  /** Register the module globally (MailService, AdminErrorReporter… in every module). Default true. */
  isGlobal?: boolean;
}

/** A class that `forRootAsync({ useClass })` / `({ useExisting })` asks for the options. */
export interface MailOptionsFactory {
  createMailOptions(): MailModuleOptions | Promise<MailModuleOptions>;
}

/** Options of `MailModule.forRootAsync`: `useFactory` (receives the `inject` providers in order), `useClass` or `useExisting`. */
export type MailModuleAsyncOptions = ConfigurableModuleAsyncOptions<MailModuleOptions, 'createMailOptions'> &
  MailModuleExtras;

const positiveInt = z.number().int().positive();

/** A string a send would accept from `parse` (the address parsers), else an issue on its field. */
const parsedBy = (parse: (value: string) => unknown) =>
  z.string().superRefine((value, ctx) => {
    try {
      parse(value);
    } catch (error) {
      if (!(error instanceof AddressSyntaxError)) throw error;
      ctx.addIssue({ code: 'custom', message: error.message });
    }
  });
/** A From option: one mailbox, as `MailService` parses it for every send. */
const fromMailbox = parsedBy(parseMailbox);

const scalarOptionsSchema = z.object({
  redisKeyPrefix: z.string().default('once:mail:'),
  defaultFrom: fromMailbox,
  configurationSetName: z.string().min(1).optional(),
  staleAfterMs: positiveInt.optional(),
  abandonedAfterMs: positiveInt.optional(),
  rateLimit: z
    .object({
      maxSendRate: z.number().positive().optional(),
      fallbackMaxSendRate: z.number().positive().default(1),
      burst: positiveInt.default(1),
      perRecipient: z
        .union([z.literal(false), z.object({ limit: positiveInt, windowMs: positiveInt })])
        .default({ limit: 10, windowMs: 3_600_000 }),
      maxWaitMs: z.number().int().nonnegative().default(30_000),
    })
    .prefault({}),
  throttleRetry: z
    .object({
      maxAttempts: positiveInt.max(10).default(4),
      baseDelayMs: z.number().int().nonnegative().default(250),
      maxDelayMs: z.number().int().nonnegative().default(5_000),
    })
    .prefault({}),
  statementBatching: z
    .object({
      claimWindowMs: z.number().int().min(0).max(100).default(2),
      outcomeWindowMs: z.number().int().min(0).max(100).default(5),
    })
    .prefault({}),
  adminErrors: z
    .object({
      recipients: z.array(parsedBy(parseAddress)).min(1).max(50),
      from: fromMailbox.optional(),
      appName: z.string().min(1),
      appVersion: z.string().min(1),
      environment: z.string().optional(),
      windowMs: positiveInt.default(15 * 60_000),
      subjectPrefix: z.string().default('[Once]'),
      // Validated by SecretRedactor itself (its options are its own concern).
      redact: z.custom<RedactorOptions>((value) => typeof value === 'object' && value !== null).default({}),
      budget: z
        .object({
          mails: positiveInt.max(1_000).default(10),
          windowMs: positiveInt
            .min(1_000)
            .max(24 * 3_600_000)
            .default(15 * 60_000),
          topFingerprints: positiveInt.max(100).default(10),
        })
        .prefault({}),
    })
    .optional(),
  sesRequestTimeoutMs: positiveInt.default(15_000),
});

/** {@link MailModuleOptions} validated, with defaults applied. */
export type ResolvedMailOptions = Omit<
  z.infer<typeof scalarOptionsSchema>,
  'staleAfterMs' | 'abandonedAfterMs'
> & {
  staleAfterMs: number;
  abandonedAfterMs: number;
  ses: MailModuleOptions['ses'];
  redis: Redis;
  clock: () => Date;
};
export type ResolvedAdminErrorOptions = NonNullable<ResolvedMailOptions['adminErrors']>;

/** Validates options once, at boot; the message names every bad field. */
export function resolveMailOptions(options: MailModuleOptions): ResolvedMailOptions {
  const { ses, redis, clock, ...scalars } = options;
  if (!ses || (!('client' in ses) && !ses.region)) {
    throw new Error(
      'Invalid MailModule options: ses must be { client } or { region, endpoint?, credentials? }',
    );
  }
  if ('client' in ses && !(ses.client instanceof SESv2Client)) {
    throw new Error('Invalid MailModule options: ses.client must be an SESv2Client');
  }
  if (!redis || typeof redis.eval !== 'function') {
    throw new Error('Invalid MailModule options: redis must be an ioredis client');
  }
  const result = scalarOptionsSchema.safeParse({
    ...scalars,
    sesRequestTimeoutMs: ses.requestTimeoutMs,
  });
  if (!result.success) {
    const issues = result.error.issues.map(
      (issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`,
    );
    throw new Error(`Invalid MailModule options:\n  - ${issues.join('\n  - ')}`);
  }
  const resolved = result.data;
  const staleAfterMs = resolved.staleAfterMs ?? resolved.sesRequestTimeoutMs + 5_000;
  const abandonedAfterMs = resolved.abandonedAfterMs ?? resolved.rateLimit.maxWaitMs + 5_000;
  const problems: string[] = [];
  if (staleAfterMs < resolved.sesRequestTimeoutMs + MIN_STALE_MARGIN_MS) {
    problems.push(
      `staleAfterMs must exceed the SES request timeout by at least ${MIN_STALE_MARGIN_MS} ms (a call in flight is not unknown yet)`,
    );
  }
  if (abandonedAfterMs <= resolved.rateLimit.maxWaitMs) {
    problems.push(
      'abandonedAfterMs must exceed rateLimit.maxWaitMs (a send may wait that long for its slot)',
    );
  }
  if (problems.length > 0) throw new Error(`Invalid MailModule options:\n  - ${problems.join('\n  - ')}`);
  return { ...resolved, staleAfterMs, abandonedAfterMs, ses, redis, clock: clock ?? (() => new Date()) };
}
