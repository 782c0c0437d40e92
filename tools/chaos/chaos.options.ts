import type { RedisPersistence } from './redis.instance';

/**
 * Where the dedup claims live: `single`, the run's redis-server (REDIS_URL, as in production
 * without DEDUP_REDIS_CLUSTER_NODES); `cluster`, a 3-master Redis Cluster of the run's own given
 * to the workers and the api as DEDUP_REDIS_CLUSTER_NODES (the rate limiters stay on REDIS_URL).
 */
export type ChaosRedis = 'single' | 'cluster';

/** The `--redis` values, in the usage's order. */
export const CHAOS_REDIS_MODES: readonly ChaosRedis[] = ['single', 'cluster'];

export interface ChaosOptions {
  /** Seeded (subscribed) users: the digest must reach each exactly once. */
  users: number;
  /** Worker processes at the start (killed ones are replaced). */
  workers: number;
  /** Share of users whose send-email message is enqueued a second time (exact copy of the fan-out's body). */
  duplicateShare: number;
  seed: number;
  /** Bound on the whole run, boot included. */
  timeoutMs: number;
  /** The queues' visibility timeout (s): short, so lost deletes and kills redeliver within the run. */
  visibilityTimeout: number;
  maxReceiveCount: number;
  /** Share of DeleteMessage/DeleteMessageBatch calls answered 500 (sticky per receipt handle). */
  deleteFailureShare: number;
  /** SendEmail calls held for longer than the visibility timeout. */
  slowSends: number;
  slowDelayMs: number;
  /** SIGKILLs of a worker in the middle of a send (alternately after SES accepted and before it got the call). */
  kills: number;
  /** SIGKILLs of the worker doing the fan-out, right after SQS accepted one of its batches. */
  fanoutKills: number;
  redisRestarts: number;
  redisDowntimeMs: number;
  redisPersistence: RedisPersistence;
  /** Where the dedup claims live (see {@link ChaosRedis}); restarts always hit the run's redis-server. */
  redis: ChaosRedis;
  /** Copies of each malformed kind on the email queue (not JSON, wrong shape, no eventId); one more on the jobs queue. */
  malformed: number;
  /** Job messages for the one slot: all but one at fire time, the last one late, mid-run. */
  jobCopies: number;
  /** `DEDUP_ENABLED` for the workers. */
  dedup: boolean;
  /**
   * Play the operator at the end: resend, through the admin API, the `unknown` rows SES has no
   * email for (in production the evidence is SES's event stream), then count again.
   */
  operatorResend: boolean;
  /** `MAIL_MAX_SEND_RATE` for the workers; unset: the SES emulator account's 200/s. */
  maxSendRate?: number;
  logLevel: string;
  /** Postgres database the run creates (and drops unless `keep`). */
  database: string;
  keep: boolean;
  /** Directory for the processes' logs (default tmp/chaos/<run id>). */
  runDir?: string;
  /** Extra variables for every worker (knobs of the dedup/mail libs, for instance). */
  workerEnv: Record<string, string>;
  /** Progress lines on stderr. */
  verbose: boolean;
}

export function defaultChaosOptions(overrides: Partial<ChaosOptions> = {}): ChaosOptions {
  const visibilityTimeout = overrides.visibilityTimeout ?? 10;
  return {
    users: 10_000,
    workers: 3,
    duplicateShare: 0.2,
    seed: Math.floor(Math.random() * 1_000_000),
    timeoutMs: 600_000,
    visibilityTimeout,
    maxReceiveCount: 5,
    deleteFailureShare: 0.1,
    slowSends: 6,
    // Past the visibility timeout, yet under the SES client's 15 s request timeout.
    slowDelayMs: (visibilityTimeout + 3) * 1000,
    kills: 2,
    fanoutKills: 1,
    redisRestarts: 1,
    redisDowntimeMs: 2000,
    redisPersistence: 'none',
    redis: 'single',
    malformed: 2,
    jobCopies: 3,
    dedup: true,
    operatorResend: true,
    logLevel: 'warn',
    // Per process: a second chaos run on the same Postgres would otherwise drop this one's database mid-run.
    database: `once_chaos_${process.pid}`,
    keep: false,
    workerEnv: {},
    verbose: false,
    ...overrides,
  };
}

export interface ChaosCli {
  /** Options of the first run; each seed of `seeds` reuses them with its own `seed`. */
  options: ChaosOptions;
  /** Seeds to run one after the other (`--seeds`), or just `options.seed`. */
  seeds: number[];
  naive: 'with' | 'only' | 'skip';
  naiveEvents: number;
  jsonFile?: string;
}

export const CHAOS_USAGE = `usage: npm run chaos -- [flags]
  --users N                 users seeded and mailed (10000)
  --workers K               worker processes (3)
  --duplicate-share S       share of users whose email message is enqueued twice (0.2)
  --seed N                  replay a run's random choices (random; printed)
  --seeds LIST              run one scenario per seed, one after the other: 1-8, 1,3,9, 1-3,7
                            (a summary row per seed; exit 1 if any fails; excludes --seed)
  --timeout SECONDS         bound on the whole run (600)
  --visibility-timeout S    queue visibility timeout in seconds (10)
  --max-receive-count N     redrive policy (5)
  --delete-failure-share S  share of DeleteMessage(Batch) calls failed with 500 (0.1)
  --slow-sends N            SendEmail calls held past the visibility timeout (6)
  --slow-delay SECONDS      how long they are held (visibility timeout + 3)
  --kills N                 SIGKILLs mid-send, each followed by a new worker (2)
  --fanout-kills N          SIGKILLs of the worker fanning out (1)
  --redis-restarts N        stop + start of the run's redis-server (1)
  --redis-downtime SECONDS  how long it stays down (2)
  --redis-persistence none|aof   none: a restart loses every key (none)
  --redis single|cluster    where the dedup claims live: the run's redis-server, or a 3-master
                            Redis Cluster of the run's own (DEDUP_REDIS_CLUSTER_NODES); the
                            restarts and the mail rate limiter stay on the redis-server (single)
  --malformed N             copies of each malformed kind (2)
  --job-copies N            job messages for the slot (3: 2 at fire time, 1 late)
  --dedup true|false        DEDUP_ENABLED for the workers (true)
  --operator-resend true|false  resend unknown rows SES never got, via the admin API, and recount (true)
  --max-send-rate N         MAIL_MAX_SEND_RATE for the workers (unset: 200/s from the SES emulator)
  --worker-env K=V          extra worker variable (repeatable; DEDUP_LEASE_MS defaults to the visibility timeout)
  --log-level LEVEL         worker and api log level (warn)
  --database NAME           Postgres database to create (once_chaos_<pid>)
  --keep                    keep the database afterwards
  --naive-only              only the naive baseline
  --no-naive                skip the naive baseline
  --naive-events N          events of the naive baseline (2000)
  --json FILE               also write the reports as JSON (chaos: an array with --seeds)
  --quiet                   no progress lines`;

/** Most seeds one `--seeds` may list. */
export const MAX_SEEDS = 1000;

/**
 * Parses a seed list: comma-separated whole numbers and inclusive ranges (`1-8`, `1,3,9`,
 * `1-3,7`), in the given order. Throws on anything else, a reversed range, a repeated seed, or
 * more than `MAX_SEEDS` seeds.
 */
export function parseSeedList(raw: string): number[] {
  const seeds: number[] = [];
  const seen = new Set<number>();
  const add = (seed: number) => {
    if (seen.has(seed)) throw new Error(`--seeds lists seed ${seed} twice ("${raw}")`);
    if (seeds.length >= MAX_SEEDS) throw new Error(`--seeds lists more than ${MAX_SEEDS} seeds ("${raw}")`);
    seen.add(seed);
    seeds.push(seed);
  };
  const whole = (text: string) => {
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text)))
      throw new Error(
        `--seeds: "${text}" is not a whole number ≥ 0 (expected e.g. 1-8, 1,3,9 or 1-3,7; got "${raw}")`,
      );
    return Number(text);
  };
  for (const part of raw.split(',').map((item) => item.trim())) {
    if (part === '')
      throw new Error(`--seeds has an empty item (expected e.g. 1-8, 1,3,9 or 1-3,7; got "${raw}")`);
    const range = /^(\d+)\s*-\s*(\d+)$/.exec(part);
    if (!range) {
      add(whole(part));
      continue;
    }
    const [from, to] = [whole(range[1]), whole(range[2])];
    if (from > to) throw new Error(`--seeds: range ${part} runs backwards (write ${to}-${from})`);
    if (to - from >= MAX_SEEDS) throw new Error(`--seeds: range ${part} has more than ${MAX_SEEDS} seeds`);
    for (let seed = from; seed <= to; seed++) add(seed);
  }
  return seeds;
}

/** Parses `--flag value` / `--flag=value` arguments; throws with the usage on anything unknown. */
export function parseChaosArgs(argv: readonly string[]): ChaosCli {
  const values = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw new Error(`unexpected argument "${arg}"\n${CHAOS_USAGE}`);
    const [name, inline] = arg.slice(2).split(/=(.*)/s, 2);
    const flag = ['keep', 'naive-only', 'no-naive', 'quiet', 'help'].includes(name);
    const value = inline ?? (flag ? 'true' : argv[++i]);
    if (value === undefined) throw new Error(`--${name} needs a value\n${CHAOS_USAGE}`);
    values.set(name, [...(values.get(name) ?? []), value]);
  }
  if (values.has('help')) throw new Error(CHAOS_USAGE);
  const take = (name: string) => {
    const list = values.get(name);
    values.delete(name);
    return list?.[list.length - 1];
  };
  const number = (name: string, min: number, max = Number.MAX_SAFE_INTEGER) => {
    const raw = take(name);
    if (raw === undefined) return undefined;
    const value = Number(raw);
    if (!Number.isFinite(value) || value < min || value > max)
      throw new Error(`--${name} must be a number in [${min}, ${max}], got "${raw}"`);
    return value;
  };
  const integer = (name: string, min: number, max?: number) => {
    const value = number(name, min, max);
    if (value !== undefined && !Number.isInteger(value)) throw new Error(`--${name} must be a whole number`);
    return value;
  };
  const boolean = (name: string) => {
    const raw = take(name);
    if (raw === undefined) return undefined;
    if (!['true', 'false'].includes(raw)) throw new Error(`--${name} must be true or false`);
    return raw === 'true';
  };

  const overrides: Partial<ChaosOptions> = {};
  const set = <K extends keyof ChaosOptions>(key: K, value: ChaosOptions[K] | undefined) => {
    if (value !== undefined) overrides[key] = value;
  };
  set('users', integer('users', 1, 1_000_000));
  set('workers', integer('workers', 1, 32));
  set('duplicateShare', number('duplicate-share', 0, 1));
  const hasSeed = values.has('seed');
  set('seed', integer('seed', 0));
  const seedList = take('seeds');
  if (seedList !== undefined && hasSeed) throw new Error('--seed and --seeds exclude each other');
  const seeds = seedList === undefined ? undefined : parseSeedList(seedList);
  if (seeds) set('seed', seeds[0]);
  const timeout = number('timeout', 1);
  set('timeoutMs', timeout === undefined ? undefined : timeout * 1000);
  set('visibilityTimeout', integer('visibility-timeout', 1, 43_200));
  set('maxReceiveCount', integer('max-receive-count', 1, 1000));
  set('deleteFailureShare', number('delete-failure-share', 0, 1));
  set('slowSends', integer('slow-sends', 0));
  const slowDelay = number('slow-delay', 0);
  set('slowDelayMs', slowDelay === undefined ? undefined : slowDelay * 1000);
  set('kills', integer('kills', 0, 100));
  set('fanoutKills', integer('fanout-kills', 0, 100));
  set('redisRestarts', integer('redis-restarts', 0, 100));
  const downtime = number('redis-downtime', 0);
  set('redisDowntimeMs', downtime === undefined ? undefined : downtime * 1000);
  const persistence = take('redis-persistence');
  if (persistence !== undefined && persistence !== 'none' && persistence !== 'aof')
    throw new Error('--redis-persistence must be none or aof');
  set('redisPersistence', persistence);
  const redis = take('redis');
  if (redis !== undefined && !CHAOS_REDIS_MODES.includes(redis as ChaosRedis))
    throw new Error(`--redis must be ${CHAOS_REDIS_MODES.join(' or ')}, got "${redis}"`);
  set('redis', redis as ChaosRedis | undefined);
  set('malformed', integer('malformed', 0, 100));
  set('jobCopies', integer('job-copies', 1, 100));
  set('dedup', boolean('dedup'));
  set('operatorResend', boolean('operator-resend'));
  set('maxSendRate', number('max-send-rate', 0.001));
  set('logLevel', take('log-level'));
  const database = take('database');
  if (database !== undefined && !/^[a-z_][a-z0-9_]*$/.test(database))
    throw new Error('--database must be a plain lower-case name');
  set('database', database);
  set('keep', boolean('keep'));
  const workerEnv: Record<string, string> = {};
  for (const pair of values.get('worker-env') ?? []) {
    const [key, value] = pair.split(/=(.*)/s, 2);
    if (!key || value === undefined) throw new Error(`--worker-env needs KEY=VALUE, got "${pair}"`);
    workerEnv[key] = value;
  }
  values.delete('worker-env');
  set('workerEnv', workerEnv);
  if (overrides.redis === 'cluster' && workerEnv['DEDUP_STORE'] === 'postgres')
    throw new Error(
      '--redis cluster needs a DEDUP_STORE that uses Redis, not --worker-env DEDUP_STORE=postgres',
    );
  set('verbose', !(boolean('quiet') ?? false));

  const naiveOnly = boolean('naive-only') ?? false;
  const noNaive = boolean('no-naive') ?? false;
  if (naiveOnly && noNaive) throw new Error('--naive-only and --no-naive exclude each other');
  const naiveEvents = integer('naive-events', 1, 1_000_000) ?? 2000;
  const jsonFile = take('json');
  if (values.size > 0) throw new Error(`unknown flag --${[...values.keys()][0]}\n${CHAOS_USAGE}`);
  const options = defaultChaosOptions(overrides);
  return {
    options,
    seeds: seeds ?? [options.seed],
    naive: naiveOnly ? 'only' : noNaive ? 'skip' : 'with',
    naiveEvents,
    jsonFile,
  };
}
