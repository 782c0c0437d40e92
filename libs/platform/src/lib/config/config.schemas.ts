import { CronTime } from 'cron';
import { validateIdempotencyScope } from '@once/dedup';
import { z } from 'zod';
import { isValidTimeZone } from '../jobs/job-period';

/** `true/false`, `1/0` or `yes/no` as a boolean. */
export const booleanString = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((value) => value === 'true' || value === '1' || value === 'yes');

const protocolList = (protocols: readonly string[]) =>
  `${/^([aeiou]|http)/.test(protocols[0] ?? '') ? 'an' : 'a'} ${protocols.join(' or ')}`;

/** The issue with `value` as a URL of one of `protocols`, or undefined; never quotes the value (it may hold a password). */
function urlProblem(value: string, protocols: readonly string[]): string | undefined {
  if (!URL.canParse(value)) return 'not a valid URL';
  const { protocol } = new URL(value);
  // WHATWG parsing repairs "https:/host"; tools that test for "scheme://" would not.
  if (!protocols.includes(protocol) || !value.toLowerCase().startsWith(`${protocol}//`))
    return `must be ${protocolList(protocols)} URL`;
  return undefined;
}

/**
 * A URL variable with one of `protocols` (e.g. `['redis:', 'rediss:']`), refused with
 * `not a valid URL` or `must be a redis: or rediss: URL` (messages never repeat the value: URLs
 * such as DATABASE_URL carry passwords). `originOnly` also refuses a path, query, fragment or userinfo.
 */
export function urlVariable(protocols: readonly string[], { originOnly = false } = {}) {
  return z.string().superRefine((value, context) => {
    const problem = urlProblem(value, protocols);
    if (problem) return void context.addIssue({ code: 'custom', message: problem });
    const url = new URL(value);
    if (originOnly && (url.pathname !== '/' || url.search || url.hash || url.username || url.password)) {
      context.addIssue({
        code: 'custom',
        message:
          'must be an origin only, such as https://site.example (no path, query, fragment or userinfo)',
      });
    }
  });
}

/** SQS: a queue name (resolved with GetQueueUrl) or an http(s) queue URL (used as is). */
const queueNameOrUrl = z.string().superRefine((value, context) => {
  const problem = /^[a-z][a-z0-9+.-]*:/i.test(value)
    ? urlProblem(value, ['http:', 'https:'])
    : /^[\w-]{1,75}(\.fifo)?$/.test(value) && value.length <= 80
      ? undefined
      : 'must be a queue name (up to 80 letters, digits, "-" or "_", optionally ending in .fifo) or an http(s) queue URL';
  if (problem) context.addIssue({ code: 'custom', message: problem });
});

/** Variables every app reads. */
export const baseEnvSchema = z.object({
  /** Unset means production: a deployment that forgets it must not run on development secrets. */
  NODE_ENV: z.enum(['development', 'test', 'production']).default('production'),
  APP_VERSION: z.string().default('0.0.0-dev'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  LOG_PRETTY: booleanString.default(false),
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().positive().default(25_000),
});

export const databaseEnvSchema = z.object({
  DATABASE_URL: urlVariable(['postgres:', 'postgresql:']).default('postgres://postgres@127.0.0.1:5432/test'),
  DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(100).default(10),
  DATABASE_MIGRATE_ON_BOOT: booleanString.default(false),
});

export const redisEnvSchema = z.object({
  REDIS_URL: urlVariable(['redis:', 'rediss:']).default('redis://127.0.0.1:6379'),
  REDIS_KEY_PREFIX: z.string().default('once:'),
});

/** AWS access: endpoints are set for local emulators and left unset for real AWS. */
export const awsEnvSchema = z.object({
  AWS_REGION: z.string().default('us-east-1'),
  AWS_ACCESS_KEY_ID: z.string().optional(),
  AWS_SECRET_ACCESS_KEY: z.string().optional(),
  SQS_ENDPOINT: urlVariable(['http:', 'https:']).optional(),
  SES_ENDPOINT: urlVariable(['http:', 'https:']).optional(),
});

/** Queue names (resolved with GetQueueUrl) or full queue URLs. */
export const queuesEnvSchema = z.object({
  SQS_JOBS_QUEUE: queueNameOrUrl.default('once-jobs'),
  SQS_EMAIL_QUEUE: queueNameOrUrl.default('once-send-email'),
});

const emailList = z
  .string()
  .transform((value) =>
    value
      .split(',')
      .map((item) => item.trim())
      .filter(Boolean),
  )
  .pipe(z.array(z.email()).max(50));

export const mailEnvSchema = z.object({
  MAIL_FROM: z.email().default('digest@once.local'),
  /** Django's ADMINS: who receives error reports. Empty: reports are only logged. */
  ADMIN_EMAILS: emailList.default([]),
  /** Emails per second across all workers. Unset: SES GetAccount's MaxSendRate. */
  MAIL_MAX_SEND_RATE: z.coerce.number().positive().optional(),
  /** Emails one recipient may get per hour across all workers. */
  MAIL_PER_RECIPIENT_PER_HOUR: z.coerce.number().int().positive().default(10),
  /** Admin error mails per window across all processes (their own budget); past it, one summary per window. */
  ADMIN_ERROR_MAILS_PER_WINDOW: z.coerce.number().int().min(1).max(1000).default(10),
  /** That window, and the one-mail-per-error-fingerprint window (ms). */
  ADMIN_ERROR_WINDOW_MS: z.coerce.number().int().min(1000).max(86_400_000).default(900_000),
});

/** One seed of a Redis Cluster, as ioredis' `new Cluster(nodes)` takes it. */
export interface RedisClusterNode {
  readonly host: string;
  readonly port: number;
}

// A host name or IPv4 address, or an IPv6 address in brackets; then a port of digits.
const HOST_PORT = /^(\[[0-9a-f:.]+\]|[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?):(\d{1,5})$/i;

/**
 * The entries of a comma-separated variable, each trimmed and parsed by `parse` (to its value and
 * the identity that makes two entries the same, or to a problem). Problems name the entry by
 * position and never quote it: an empty entry, one `parse` refuses, an entry given twice.
 * `none`: this value (e.g. `none`) means no entries (an empty variable counts as unset).
 */
function commaList<T>(
  parse: (entry: string) => { readonly value: T; readonly id: string } | { readonly problem: string },
  none?: string,
) {
  return z.string().transform((value, context): T[] => {
    if (none !== undefined && value.trim() === none) return [];
    const entries = value.split(',').map((entry) => entry.trim());
    const parsed: T[] = [];
    const seen = new Map<string, number>();
    const problems: string[] = [];
    entries.forEach((entry, index) => {
      const position = `entry ${index + 1} of ${entries.length}`;
      if (!entry) return void problems.push(`${position} is empty`);
      const result = parse(entry);
      if ('problem' in result) return void problems.push(`${position} ${result.problem}`);
      const first = seen.get(result.id);
      if (first !== undefined) return void problems.push(`${position} repeats entry ${first + 1}`);
      seen.set(result.id, index);
      parsed.push(result.value);
    });
    for (const message of problems) context.addIssue({ code: 'custom', message });
    return problems.length > 0 ? z.NEVER : parsed;
  });
}

/**
 * A comma-separated list of `host:port` seeds (`[::1]:7000` for IPv6), parsed to
 * {@link RedisClusterNode}s. Refused, naming the entry by position and never quoting it: an empty
 * entry, anything that is not `host:port` (URLs too: TLS and passwords are not supported), a port
 * outside 1–65535, an entry given twice.
 */
export const redisClusterNodeList = commaList<RedisClusterNode>((entry) => {
  const match = HOST_PORT.exec(entry);
  if (!match) return { problem: 'must be host:port (a URL, TLS or a password is not supported)' };
  const host = (match[1] as string).replace(/^\[|\]$/g, '').toLowerCase();
  const port = Number(match[3]);
  if (port < 1 || port > 65_535) return { problem: 'has a port outside 1-65535' };
  return { value: { host, port }, id: `${host}:${port}` };
});

/** Exactly-once handling of SQS messages (@once/dedup). */
export const dedupEnvSchema = z.object({
  /** `false` turns @Idempotent off (benchmarks of the bare pipeline only; never in production). */
  DEDUP_ENABLED: booleanString.default(true),
  DEDUP_STORE: z.enum(['redis', 'postgres', 'redis+postgres']).default('redis+postgres'),
  /** How long a completed message suppresses duplicates: above the queues' retention (4 days by default). */
  DEDUP_TTL_MS: z.coerce
    .number()
    .int()
    .positive()
    .default(7 * 24 * 3600_000),
  /** Lease on a message in flight; keep it at most the queues' visibility timeout. */
  DEDUP_LEASE_MS: z.coerce.number().int().min(100).default(30_000),
  /** Redis unreachable: `fail` retries the message later; `bypass` claims in Postgres alone. */
  DEDUP_ON_STORE_DOWN: z.enum(['fail', 'bypass']).default('bypass'),
  /**
   * Seeds of a Redis Cluster that holds the dedup records instead of REDIS_URL (which keeps the
   * rate limiters, the job publisher and the duplicate counters). Unset: dedup uses REDIS_URL.
   * Only with DEDUP_STORE `redis` or `redis+postgres` (see {@link dedupEnvIssues}).
   */
  DEDUP_REDIS_CLUSTER_NODES: redisClusterNodeList.optional(),
  /**
   * Scopes whose dedup records live in Redis alone with DEDUP_STORE `redis+postgres` (no Postgres
   * commit per message): those whose effect keeps its own durable record, as `send-email`'s mail
   * ledger does. Comma list, or `none`. Ignored by the other stores.
   */
  DEDUP_REDIS_ONLY_SCOPES: commaList<string>((entry) => {
    const problem = validateIdempotencyScope(entry);
    return problem ? { problem: `is not a valid scope (${problem})` } : { value: entry, id: entry };
  }, 'none').default(['send-email']),
});

/** A problem of the config that names its variable. */
export interface VariableIssue {
  readonly variable: string;
  readonly message: string;
}

/** What one DEDUP_* variable's schema cannot see: conflicts between them. */
export function dedupEnvIssues(
  config: Partial<Pick<DedupEnv, 'DEDUP_STORE' | 'DEDUP_REDIS_CLUSTER_NODES'>>,
): VariableIssue[] {
  if (config.DEDUP_REDIS_CLUSTER_NODES === undefined || config.DEDUP_STORE !== 'postgres') return [];
  return [
    {
      variable: 'DEDUP_REDIS_CLUSTER_NODES',
      message: 'needs DEDUP_STORE redis or redis+postgres (DEDUP_STORE postgres uses no Redis)',
    },
  ];
}

/**
 * {@link dedupEnvIssues} as a zod refinement, for an app schema that extends `dedupEnvSchema.shape`
 * (`.superRefine(refineDedupEnv)`): the conflicts then fail `loadConfig` like any bad variable.
 */
export function refineDedupEnv(
  config: Partial<Pick<DedupEnv, 'DEDUP_STORE' | 'DEDUP_REDIS_CLUSTER_NODES'>>,
  context: z.RefinementCtx,
): void {
  for (const { variable, message } of dedupEnvIssues(config))
    context.addIssue({ code: 'custom', path: [variable], message });
}

/** A cron expression (5 or 6 fields, validated by the cron package) or `off`. */
export const cronOrOff = z.string().refine(
  (value) => {
    if (value === 'off') return true;
    try {
      new CronTime(value);
      return true;
    } catch {
      return false;
    }
  },
  { message: 'must be a cron expression (e.g. "0 7 * * *") or "off"' },
);

/**
 * The jobs' schedules, read by the scheduler (to fire them) and the api (to check a manual
 * trigger's slot): one definition so the two cannot disagree on a default.
 */
export const schedulesEnvSchema = z.object({
  DIGEST_CRON: cronOrOff.default('0 7 * * *'),
  /** The seed's cron_monthly_email_reminder. */
  REMINDER_CRON: cronOrOff.default('0 9 1 * *'),
  /** Zone of the crons and of the job periods (the digest's calendar day). IANA name or `UTC±hh:mm`. */
  SCHEDULER_TIMEZONE: z
    .string()
    .default('UTC')
    .refine(isValidTimeZone, { message: 'must be an IANA time zone (e.g. "Europe/Berlin") or UTC±hh:mm' }),
});

export type BaseEnv = z.infer<typeof baseEnvSchema>;
export type DedupEnv = z.infer<typeof dedupEnvSchema>;
export type DatabaseEnv = z.infer<typeof databaseEnvSchema>;
export type RedisEnv = z.infer<typeof redisEnvSchema>;
export type AwsEnv = z.infer<typeof awsEnvSchema>;
export type QueuesEnv = z.infer<typeof queuesEnvSchema>;
export type MailEnv = z.infer<typeof mailEnvSchema>;
export type SchedulesEnv = z.infer<typeof schedulesEnvSchema>;
