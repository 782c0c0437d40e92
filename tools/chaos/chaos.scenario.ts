import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { SendMessageBatchCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { messagesLeft, readQueueDepth as queueDepth } from '@once/dedup/sqs';
import type { JobMessage } from '@once/platform';
import { OwnRedisCluster } from '@once/testing';
import { ChaosOptions, defaultChaosOptions } from './chaos.options';
import {
  ChaosReport,
  claimsRedisLine,
  countDeliveries,
  DeadLetterCounts,
  DeadLetterEvidence,
  DeliveryCounts,
  findViolations,
  Injection,
  KillRecord,
  LedgerCounts,
  OperatorStep,
  QueueCounts,
  UnknownCounts,
} from './chaos.report';
import { EmulatorHost, startEmulatorHost } from './emulator.host';
import { KillPoint, SesFaultProxy, SqsFaultProxy } from './fault.proxy';
import { diagnoseDeadLetter, formatHistory, MessageTrail, onlyFailedDeletes } from './message.trail';
import { answersOk, freePort, sleep, until } from './net.util';
import { dropDatabase, recreateDatabase, tableExists, withDatabase } from './postgres.database';
import { RedisInstance } from './redis.instance';
import { SeededRandom } from './seeded.random';
import { ROOT, runSourceToEnd, spawnSource, stopProcess, trackChild } from './source.process';
import { WorkerFleet } from './worker.fleet';

const JOBS_QUEUE = 'once-jobs';
const EMAIL_QUEUE = 'once-send-email';
const CLI = 'apps/api/src/cli/cli.ts';
/** Queues empty, nothing held or scheduled, for this long: the run is over. */
const QUIET_MS = 3000;

interface SeededUser {
  id: string;
  email: string;
}

interface StoredEmail {
  messageId: string;
  destination: { to: string[] };
  subject: string;
}

/** Background work the drain must wait for (replacements, restarts, delayed copies); errors are kept. */
class PendingWork {
  count = 0;
  readonly errors: string[] = [];

  track(what: string, work: Promise<unknown>): void {
    this.count++;
    work
      .catch((error: unknown) => {
        this.errors.push(`${what}: ${error instanceof Error ? error.message : String(error)}`);
      })
      .finally(() => this.count--);
  }
}

/** A one-shot action run when the SES emulator has accepted `atAccepted` emails (or forced at the end). */
interface Trigger {
  name: string;
  atAccepted: number;
  fired: boolean;
  /** Kills cannot be forced: they need a send in flight. */
  forceable: boolean;
  run: () => void;
}

function malformedBodies(runId: string, copies: number, slot: string): { email: string[]; jobs: string[] } {
  const day = slot.slice(0, 10);
  const email: string[] = [];
  for (let k = 1; k <= copies; k++) {
    email.push(`chaos-malformed ${runId} #${k}: {"eventId": "not json at all"`);
    email.push(
      JSON.stringify({
        eventId: `chaos-malformed:${runId}:wrong-shape:${k}`,
        to: 'not-an-email',
        subject: '',
        text: 42,
      }),
    );
    // Addressed to a real user with the real subject: a worker that sent it would show up as a duplicate.
    email.push(
      JSON.stringify({
        to: 'user1@example.com',
        subject: `Your daily digest for ${day}`,
        text: `chaos-malformed:${runId}:missing-event-id:${k}`,
      }),
    );
  }
  // A job without its eventId: fanning it out would mail everyone again.
  const jobs =
    copies > 0
      ? [
          JSON.stringify({
            job: 'daily-digest',
            slot,
            firedAt: new Date().toISOString(),
            trigger: 'manual',
            note: `chaos-malformed:${runId}:job`,
          }),
        ]
      : [];
  return { email, jobs };
}

async function readLedger(
  databaseUrl: string,
  period: string,
  expected: number,
  sesEmails: readonly StoredEmail[],
  subject: string,
): Promise<Omit<LedgerCounts, 'effective' | 'adminApi'>> {
  return withDatabase(databaseUrl, async (db) => {
    if (!(await tableExists(db, 'mail_ledger')))
      return {
        present: false,
        rows: 0,
        byStatus: {},
        keysWithoutRow: expected,
        takenOver: 0,
        workerResends: 0,
      };
    const pattern = `digest:${period}:user:%`;
    const statuses: Array<{ status: string; n: number }> = await db.query(
      `SELECT CASE WHEN status = 'pending' AND ses_called_at IS NOT NULL THEN 'pending (SES called)'
                   WHEN status = 'pending' THEN 'pending (SES not called)' ELSE status END AS status,
              count(*)::int AS n
         FROM mail_ledger WHERE idempotency_key LIKE $1 GROUP BY 1 ORDER BY 1`,
      [pattern],
    );
    const rows = statuses.reduce((sum, row) => sum + row.n, 0);
    const [history]: Array<{ taken_over: number; worker_resends: number }> = await db.query(
      `SELECT count(*) FILTER (WHERE history @> '[{"event": "taken-over"}]')::int AS taken_over,
              count(*) FILTER (WHERE history @> '[{"event": "resend", "actor": "worker:redelivery"}]')::int AS worker_resends
         FROM mail_ledger WHERE idempotency_key LIKE $1`,
      [pattern],
    );
    const ids: Array<{ id: string }> = await db.query(
      'SELECT ses_message_id AS id FROM mail_ledger WHERE idempotency_key LIKE $1 AND ses_message_id IS NOT NULL',
      [pattern],
    );
    const known = new Set(ids.map((row) => row.id));
    return {
      present: true,
      rows,
      byStatus: Object.fromEntries(statuses.map((row) => [row.status, row.n])),
      keysWithoutRow: Math.max(0, expected - rows),
      sesEmailsUnrecorded: sesEmails.filter(
        (email) => email.subject === subject && !known.has(email.messageId),
      ).length,
      takenOver: history?.taken_over ?? 0,
      workerResends: history?.worker_resends ?? 0,
    };
  });
}

/** The slot's keys the admin API lists with an effective status (pages through `GET /admin/mail`). */
async function listLedgerKeys(
  baseUrl: string,
  token: string,
  status: string,
  prefix: string,
): Promise<string[]> {
  const keys: string[] = [];
  let cursor: string | undefined;
  do {
    const query = new URLSearchParams({ status, limit: '200', ...(cursor ? { cursor } : {}) });
    const page = await adminGet<{ items: Array<{ idempotencyKey: string }>; nextCursor?: string | null }>(
      baseUrl,
      token,
      `/admin/mail?${query.toString()}`,
    );
    keys.push(...page.items.map((item) => item.idempotencyKey).filter((key) => key.startsWith(prefix)));
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return keys;
}

async function readEffectiveLedger(
  baseUrl: string,
  token: string,
  prefix: string,
): Promise<Pick<LedgerCounts, 'effective' | 'adminApi'>> {
  try {
    const [unknown, failed, pending] = await Promise.all(
      ['unknown', 'failed', 'pending'].map((status) => listLedgerKeys(baseUrl, token, status, prefix)),
    );
    return { effective: { unknown, failed, pending }, adminApi: 'ok' };
  } catch (error) {
    return {
      effective: { unknown: [], failed: [], pending: [] },
      adminApi: error instanceof Error ? error.message : String(error),
    };
  }
}

/** The operator's move for an `unknown` row SES has no email for: a deliberate, audited resend. */
async function operatorResend(
  baseUrl: string,
  token: string,
  keys: readonly string[],
): Promise<OperatorStep> {
  const step: OperatorStep = { enabled: true, resent: 0, outcomes: {}, errors: [] };
  for (const key of keys) {
    const response = await fetch(`${baseUrl}/admin/mail/${encodeURIComponent(key)}/resend`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'chaos: unknown row, no email in SES' }),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await response.text();
    if (!response.ok) {
      step.errors.push(`${key}: ${response.status} ${text.slice(0, 200)}`);
      continue;
    }
    step.resent++;
    const status = (JSON.parse(text) as { status?: string }).status ?? 'unknown';
    step.outcomes[status] = (step.outcomes[status] ?? 0) + 1;
  }
  return step;
}

interface AdminQueueStatus {
  name: string;
  visible: number;
  inFlight: number;
  delayed: number;
  deadLetter: { visible: number; inFlight: number } | null;
}

interface AdminDeadLetter {
  messageId: string;
  body: string;
  reason: string | null;
  sourceMessageId: string | null;
  receiveCount: number;
  sentAt: string | null;
}

interface DeadLetterContext {
  trail: MessageTrail;
  databaseUrl: string;
  /** Keys a killed worker had received. */
  undecided: ReadonlySet<string>;
  maxReceiveCount: number;
  /** The SES emulator has this key's digest. */
  delivered: (eventId: string) => boolean;
}

/** Shown per dead-lettered well-formed message, at most. */
const EVIDENCE_LIMIT = 20;

function eventIdOf(body: string): string | undefined {
  try {
    const eventId = (JSON.parse(body) as { eventId?: unknown }).eventId;
    return typeof eventId === 'string' ? eventId : undefined;
  } catch {
    return undefined;
  }
}

/** The trail, ledger row and kill exposure of each well-formed dead letter: why it ended there. */
async function explainDeadLetters(
  letters: ReadonlyArray<AdminDeadLetter & { queue: DeadLetterEvidence['queue'] }>,
  context: DeadLetterContext,
): Promise<DeadLetterEvidence[]> {
  const chosen = letters.slice(0, EVIDENCE_LIMIT);
  const keys = chosen
    .map((letter) => eventIdOf(letter.body))
    .filter((key): key is string => key !== undefined);
  const rows: Array<{
    key: string;
    status: string;
    attempts: number;
    ses_called_at: string | null;
    history: string;
  }> =
    keys.length === 0
      ? []
      : await withDatabase(context.databaseUrl, async (db) =>
          (await tableExists(db, 'mail_ledger'))
            ? db.query(
                `SELECT idempotency_key AS key, status, attempts, ses_called_at::text, history::text
                   FROM mail_ledger WHERE idempotency_key = ANY($1)`,
                [keys],
              )
            : [],
        );
  const rowOf = new Map(rows.map((row) => [row.key, row]));
  return chosen.map((letter) => {
    const eventId = eventIdOf(letter.body);
    const histories = eventId ? context.trail.forEventId(eventId) : [];
    const own =
      context.trail.forMessageId(letter.sourceMessageId ?? letter.messageId) ??
      context.trail.forMessageId(letter.messageId) ??
      [...histories].sort(
        (a, b) =>
          b.events.filter((event) => event.kind === 'received').length -
          a.events.filter((event) => event.kind === 'received').length,
      )[0];
    const row = eventId ? rowOf.get(eventId) : undefined;
    return {
      queue: letter.queue,
      eventId,
      messageId: letter.messageId,
      sourceMessageId: letter.sourceMessageId,
      receiveCount: letter.receiveCount,
      reason: letter.reason,
      sentAt: letter.sentAt,
      heldByKilledWorker: eventId ? context.undecided.has(eventId) : false,
      delivered: eventId ? context.delivered(eventId) : false,
      ledger: row
        ? {
            status: row.status,
            attempts: row.attempts,
            sesCalledAt: row.ses_called_at,
            history: row.history.length > 600 ? `${row.history.slice(0, 600)}…` : row.history,
          }
        : undefined,
      diagnosis: diagnoseDeadLetter(own, letter.reason, context.maxReceiveCount),
      onlyFailedDeletes: letter.reason === null && onlyFailedDeletes(own),
      trail: histories.map(formatHistory),
    };
  });
}

async function adminGet<T>(baseUrl: string, token: string, path: string): Promise<T> {
  const response = await fetch(`${baseUrl}${path}`, {
    headers: { authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(15_000),
  });
  if (!response.ok) throw new Error(`GET ${path} answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as T;
}

async function readDeadLetters(
  baseUrl: string,
  token: string,
  injected: { email: string[]; jobs: string[] },
  evidence: DeadLetterContext,
): Promise<DeadLetterCounts> {
  const all = new Set([...injected.email, ...injected.jobs]);
  const counts: DeadLetterCounts = {
    adminApi: 'ok',
    injected: all.size,
    found: 0,
    copies: 0,
    digestMessages: 0,
    jobMessages: 0,
    depth: 0,
    peeked: 0,
    reasons: [],
    wellFormed: [],
  };
  const wellFormed: Array<AdminDeadLetter & { queue: DeadLetterEvidence['queue'] }> = [];
  try {
    const { items: queues } = await adminGet<{ items: AdminQueueStatus[] }>(baseUrl, token, '/admin/queues');
    counts.depth = queues.reduce(
      (sum, queue) => sum + (queue.deadLetter ? queue.deadLetter.visible + queue.deadLetter.inFlight : 0),
      0,
    );
    const seen = new Set<string>();
    for (const queue of ['send-email', 'jobs'] as const) {
      const { items } = await adminGet<{ items: AdminDeadLetter[] }>(
        baseUrl,
        token,
        `/admin/queues/${queue}/dead-letters?limit=100`,
      );
      counts.peeked += items.length;
      for (const item of items) {
        if (all.has(item.body)) {
          counts.copies++;
          seen.add(item.body);
          if (item.reason && !counts.reasons.includes(item.reason)) counts.reasons.push(item.reason);
        } else {
          if (queue === 'send-email') counts.digestMessages++;
          else counts.jobMessages++;
          wellFormed.push({ ...item, queue });
        }
      }
    }
    counts.found = seen.size;
    counts.wellFormed = await explainDeadLetters(wellFormed, evidence);
  } catch (error) {
    counts.adminApi = error instanceof Error ? error.message : String(error);
  }
  return counts;
}

/**
 * The chaos run: a digest for `users` users through `workers` worker processes while messages are
 * duplicated, deletes fail, sends outlive their visibility timeout, workers are SIGKILLed, Redis
 * restarts and malformed messages arrive. Returns what reached the SES emulator, the mail ledger
 * and the dead-letter queues, and every broken rule.
 */
export async function runChaos(overrides: Partial<ChaosOptions> = {}): Promise<ChaosReport> {
  const options = defaultChaosOptions(overrides);
  const started = Date.now();
  const deadline = started + options.timeoutMs;
  const runId = `${new Date(started).toISOString().replace(/[:.]/g, '-')}-s${options.seed}`;
  const runDir = options.runDir ?? join(ROOT, 'tmp', 'chaos', runId);
  const random = new SeededRandom(options.seed);
  const log = (message: string) => {
    if (options.verbose)
      process.stderr.write(`[chaos ${((Date.now() - started) / 1000).toFixed(1)}s] ${message}\n`);
  };
  const cleanup: Array<() => Promise<unknown>> = [];
  const pending = new PendingWork();
  const harnessErrors: string[] = [];
  const kills: KillRecord[] = [];
  const trail = new MessageTrail(started);

  try {
    const host: EmulatorHost = await startEmulatorHost({
      visibilityTimeout: options.visibilityTimeout,
      maxReceiveCount: options.maxReceiveCount,
    });
    cleanup.push(() => host.stop());
    const redis = await RedisInstance.start(options.redisPersistence);
    cleanup.push(() => redis.stop());
    const databaseUrl = await recreateDatabase(options.database);
    if (!options.keep) cleanup.push(() => dropDatabase(options.database));
    // The claims' own cluster: the restarts below still hit the redis-server (rate limiter, publisher).
    const claimsCluster = options.redis === 'cluster' ? await OwnRedisCluster.start() : undefined;
    claimsCluster?.processes.forEach(trackChild);
    if (claimsCluster) cleanup.push(() => claimsCluster.stop());
    const clusterNodes = claimsCluster?.nodes.map(({ host: node, port }) => `${node}:${port}`);
    const claimsRedis = claimsRedisLine(redis.url, clusterNodes);
    log(
      `emulators ${host.sqsEndpoint} ${host.sesEndpoint}, redis ${redis.url}, database ${options.database}, logs ${runDir}`,
    );
    log(claimsRedis);

    const baseEnv: Record<string, string> = {
      ...host.env,
      NODE_ENV: 'test',
      LOG_LEVEL: options.logLevel,
      DATABASE_URL: databaseUrl,
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: 'once:chaos:',
      SQS_JOBS_QUEUE: JOBS_QUEUE,
      SQS_EMAIL_QUEUE: EMAIL_QUEUE,
      ...(clusterNodes ? { DEDUP_REDIS_CLUSTER_NODES: clusterNodes.join(',') } : {}),
    };
    const cliLog = join(runDir, 'cli.log');
    await runSourceToEnd(CLI, ['migrate'], { env: baseEnv, logFile: cliLog });
    await runSourceToEnd(CLI, ['seed', String(options.users)], { env: baseEnv, logFile: cliLog });
    const users: SeededUser[] = await withDatabase(databaseUrl, (db) =>
      db.query('SELECT u.id::text AS id, u.email FROM users u WHERE u.subscribed ORDER BY u.id'),
    );
    if (users.length !== options.users)
      harnessErrors.push(`seeded ${users.length} subscribed users, expected ${options.users}`);
    log(`migrated and seeded ${users.length} users`);

    const adminToken = randomBytes(24).toString('hex');
    const apiPort = await freePort();
    const apiUrl = `http://127.0.0.1:${apiPort}`;
    const api = spawnSource('apps/api/src/main.ts', [], {
      env: {
        ...baseEnv,
        PORT: String(apiPort),
        ADMIN_TOKENS: adminToken,
        ADMIN_RATE_LIMIT_PER_MINUTE: '100000',
      },
      logFile: join(runDir, 'api.log'),
    });
    cleanup.push(() => stopProcess(api, 5000));

    const sqsProxy = new SqsFaultProxy(host.sqsEndpoint, {
      emailQueue: EMAIL_QUEUE,
      deleteFailureShare: options.deleteFailureShare,
      random,
      trail,
    });
    const sesProxy = new SesFaultProxy(host.sesEndpoint, { slowDelayMs: options.slowDelayMs });
    cleanup.push(
      () => sqsProxy.close(),
      () => sesProxy.close(),
    );
    const firstSlow = Math.floor(users.length * 0.05);
    sesProxy.slowDown(
      random.sample(
        Array.from({ length: Math.max(0, users.length - firstSlow) }, (_, i) => firstSlow + i),
        options.slowSends,
      ),
    );

    const workerEnv: Record<string, string> = {
      ...baseEnv,
      SQS_WAIT_TIME_SECONDS: '1',
      SQS_BATCH_SIZE: '10',
      SHUTDOWN_TIMEOUT_MS: '5000',
      DEDUP_ENABLED: String(options.dedup),
      // The lease must not outlast the visibility timeout (see libs/dedup's caveats).
      DEDUP_LEASE_MS: String(options.visibilityTimeout * 1000),
      ...(options.maxSendRate ? { MAIL_MAX_SEND_RATE: String(options.maxSendRate) } : {}),
      ...options.workerEnv,
    };
    const activeFleet = new WorkerFleet(
      { env: workerEnv, sqs: sqsProxy, ses: sesProxy, queues: [JOBS_QUEUE, EMAIL_QUEUE], logDir: runDir },
      {
        onCrash: (worker, code) => {
          log(`worker ${worker.label} exited on its own (${code}); starting a replacement`);
          pending.track('replacing a crashed worker', activeFleet.replace());
        },
      },
    );
    cleanup.push(() => activeFleet.stop(8000));
    await Promise.all([
      activeFleet.start(options.workers),
      until('api /health', () => answersOk(`${apiUrl}/health`), { timeoutMs: 120_000, intervalMs: 250 }),
    ]);
    log(`${options.workers} workers and the api are up`);

    const sqs = new SQSClient({
      region: host.region,
      endpoint: host.sqsEndpoint,
      credentials: {
        accessKeyId: host.env.AWS_ACCESS_KEY_ID,
        secretAccessKey: host.env.AWS_SECRET_ACCESS_KEY,
      },
    });
    cleanup.push(async () => sqs.destroy());
    const jobsUrl = host.queueUrls[JOBS_QUEUE];
    const emailUrl = host.queueUrls[EMAIL_QUEUE];
    const send = async (url: string, body: string) => {
      const output = await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: body }));
      trail.sent(url.slice(url.lastIndexOf('/') + 1), output.MessageId, body, 'chaos');
      return output;
    };

    const slot = new Date(Math.floor(Date.now() / 60_000) * 60_000).toISOString();
    // The job's period (the scheduler's calendar day, UTC here): job and email keys derive from it.
    const period = slot.slice(0, 10);
    const subject = `Your daily digest for ${period}`;
    const job: JobMessage = {
      eventId: `daily-digest:${period}`,
      job: 'daily-digest',
      slot,
      period,
      firedAt: new Date().toISOString(),
      trigger: 'manual',
    };
    const jobBody = JSON.stringify(job);
    let jobsSent = 0;
    const sendJob = () =>
      pending.track(
        'sending a job copy',
        send(jobsUrl, jobBody).then(() => {
          jobsSent++;
        }),
      );

    const malformed = malformedBodies(runId, options.malformed, slot);
    let malformedSent = 0;
    const sendMalformed = (emailBodies: string[], jobBodies: string[]) =>
      pending.track(
        'sending malformed messages',
        Promise.all([
          ...emailBodies.map((body) => send(emailUrl, body).then(() => malformedSent++)),
          ...jobBodies.map((body) => send(jobsUrl, body).then(() => malformedSent++)),
        ]),
      );

    // Exact copies of the fan-out's bodies for a random share of users: half at once (racing the
    // original), half 1-15 s later (after it was most likely handled and deleted).
    const duplicateTarget = Math.ceil(options.duplicateShare * users.length);
    const duplicateKeys = new Set(
      random.sample(users, duplicateTarget).map((user) => `digest:${period}:user:${user.id}`),
    );
    const duplicated = new Set<string>();
    const duplicateQueue: string[] = [];
    let duplicatesScheduled = 0;
    let duplicatesSent = 0;
    sqsProxy.onFanout((bodies) => {
      for (const body of bodies) {
        let eventId: unknown;
        try {
          eventId = (JSON.parse(body) as { eventId?: unknown }).eventId;
        } catch {
          continue;
        }
        if (typeof eventId !== 'string' || !duplicateKeys.has(eventId) || duplicated.has(eventId)) continue;
        duplicated.add(eventId);
        if (random.chance(0.5)) duplicateQueue.push(body);
        else {
          duplicatesScheduled++;
          pending.track(
            'a delayed duplicate',
            sleep(random.int(1000, 15_000)).then(() => {
              duplicatesScheduled--;
              duplicateQueue.push(body);
            }),
          );
        }
      }
    });
    let flushing = false;
    const flushDuplicates = async () => {
      if (flushing) return;
      flushing = true;
      try {
        while (duplicateQueue.length > 0) {
          const batch = duplicateQueue.splice(0, 10);
          const result = await sqs.send(
            new SendMessageBatchCommand({
              QueueUrl: emailUrl,
              Entries: batch.map((body, i) => ({ Id: String(i), MessageBody: body })),
            }),
          );
          duplicatesSent += result.Successful?.length ?? 0;
          for (const entry of result.Successful ?? [])
            trail.sent(EMAIL_QUEUE, entry.MessageId, batch[Number(entry.Id)], 'chaos');
          const failed = new Set((result.Failed ?? []).map((entry) => Number(entry.Id)));
          duplicateQueue.push(...batch.filter((_, i) => failed.has(i)));
        }
      } finally {
        flushing = false;
      }
    };
    const flusher = setInterval(() => pending.track('sending duplicates', flushDuplicates()), 100);
    cleanup.push(async () => clearInterval(flusher));

    const replaceAfterKill = (record: KillRecord) =>
      pending.track(
        `replacing ${record.victim}`,
        activeFleet.replace().then((worker) => {
          record.replacement = worker.label;
        }),
      );
    // Keys a killed worker had received: the only ones a kill can leave `unknown`.
    const undecided = new Set<string>();
    const killHook = (kind: KillRecord['kind'], point: KillPoint) => (label: string) => {
      activeFleet.kill(label);
      const record: KillRecord = {
        kind,
        point,
        victim: label,
        atMs: Date.now() - started,
        openSends: sesProxy.openKeys(label),
        receivedKeys: 0,
      };
      const received = sqsProxy.receivedKeys(label);
      record.receivedKeys = received.length;
      for (const key of received) undecided.add(key);
      kills.push(record);
      log(`SIGKILL ${label} (${kind}, ${point})`);
      replaceAfterKill(record);
    };

    let killArmed = false;
    let redisRestarts = 0;
    const triggers: Trigger[] = [];
    const n = users.length;
    for (let i = 0; i < options.kills; i++) {
      const point: KillPoint = i % 2 === 0 ? 'after-accept' : 'before-forward';
      const trigger: Trigger = {
        name: `kill ${i + 1}`,
        atAccepted: Math.floor(n * (0.15 + (0.7 * (i + 0.5)) / options.kills)),
        fired: false,
        forceable: false,
        run: () => {
          killArmed = true;
          void sesProxy.armKill(point, killHook('send', point)).then(() => {
            killArmed = false;
          });
        },
      };
      triggers.push(trigger);
    }
    for (let i = 0; i < options.redisRestarts; i++) {
      triggers.push({
        name: `redis restart ${i + 1}`,
        atAccepted: Math.floor((n * 0.9 * (i + 1)) / (options.redisRestarts + 1)),
        fired: false,
        forceable: true,
        run: () => {
          log(
            `restarting redis-server (${options.redisDowntimeMs} ms down, persistence ${options.redisPersistence})`,
          );
          pending.track(
            'restarting redis',
            redis.restart(options.redisDowntimeMs).then(() => {
              redisRestarts++;
              log('redis-server is back');
            }),
          );
        },
      });
    }
    const lateMalformedEmail = malformed.email.slice(Math.ceil(malformed.email.length / 2));
    triggers.push({
      name: 'late malformed messages',
      atAccepted: Math.floor(n * 0.4),
      fired: false,
      forceable: true,
      run: () => sendMalformed(lateMalformedEmail, []),
    });
    if (options.jobCopies > 1) {
      triggers.push({
        name: 'late job copy',
        atAccepted: Math.floor(n * 0.6),
        fired: false,
        forceable: true,
        run: () => {
          log('sending the late copy of the job message');
          sendJob();
        },
      });
    }
    const checkTriggers = (accepted: number) => {
      for (const trigger of triggers) {
        if (trigger.fired || accepted < trigger.atAccepted) continue;
        // One armed send-kill at a time: the next waits for the previous victim.
        if (!trigger.forceable && killArmed) continue;
        trigger.fired = true;
        trigger.run();
      }
    };
    sesProxy.onAccepted(checkTriggers);

    let fanoutKillsDone = 0;
    const armFanoutKill = () => {
      const afterBatches = Math.max(1, Math.floor(Math.ceil(n / 10) * 0.3));
      void sqsProxy.armFanoutKill(afterBatches, killHook('fan-out', 'after-accept')).then(() => {
        fanoutKillsDone++;
        if (fanoutKillsDone < options.fanoutKills) armFanoutKill();
      });
    };
    if (options.fanoutKills > 0) armFanoutKill();

    const fired = Date.now();
    log(`firing ${job.eventId} (${options.jobCopies - (options.jobCopies > 1 ? 1 : 0)} copies now)`);
    for (let i = 0; i < Math.max(1, options.jobCopies - 1); i++) sendJob();
    sendMalformed(malformed.email.slice(0, Math.ceil(malformed.email.length / 2)), malformed.jobs);

    let drained = false;
    let quietSince: number | undefined;
    let lastProgress = 0;
    let drainedAt: number | undefined;
    while (Date.now() < deadline) {
      const [jobs, email] = await Promise.all([queueDepth(sqs, jobsUrl), queueDepth(sqs, emailUrl)]);
      const queued = messagesLeft(jobs) + messagesLeft(email);
      const busy =
        queued > 0 ||
        pending.count > 0 ||
        duplicateQueue.length > 0 ||
        duplicatesScheduled > 0 ||
        sesProxy.pending > 0;
      if (Date.now() - lastProgress > 5000) {
        lastProgress = Date.now();
        log(
          `accepted by SES ${sesProxy.stats.accepted}, email queue ${email.visible} visible / ${email.inFlight} in flight, ` +
            `jobs ${jobs.visible}/${jobs.inFlight}, duplicates sent ${duplicatesSent}, failed deletes ${sqsProxy.stats.deletesFailed}, ` +
            `live workers ${activeFleet.live().length}`,
        );
      }
      if (busy) quietSince = undefined;
      else {
        const unfired = triggers.filter((trigger) => !trigger.fired && trigger.forceable);
        if (unfired.length > 0) {
          log(`queues empty before ${unfired.map((trigger) => trigger.name).join(', ')}: firing now`);
          for (const trigger of unfired) {
            trigger.fired = true;
            trigger.run();
          }
          quietSince = undefined;
        } else {
          quietSince ??= Date.now();
          if (Date.now() - quietSince >= QUIET_MS) {
            drained = true;
            drainedAt = quietSince;
            break;
          }
        }
      }
      await sleep(500);
    }
    log(drained ? 'queues drained; counting' : 'timed out waiting for the queues to drain; counting anyway');
    await sleep(1000);
    activeFleet.sampleRss();

    const readStore = async () => {
      const response = await fetch(`${host.sesEndpoint}/store`);
      return ((await response.json()) as { emails: StoredEmail[] }).emails;
    };
    const emails = await readStore();
    const addresses = users.map((user) => user.email);
    const delivery: DeliveryCounts = countDeliveries(emails, addresses, subject);
    const keyOf = (user: SeededUser) => `digest:${period}:user:${user.id}`;
    const reached = new Set(
      emails.filter((email) => email.subject === subject).flatMap((email) => email.destination.to),
    );
    const ledger: LedgerCounts = {
      ...(await readLedger(databaseUrl, period, users.length, emails, subject)),
      ...(await readEffectiveLedger(apiUrl, adminToken, `digest:${period}:user:`)),
    };
    const unknownKeys = new Set(ledger.effective.unknown);
    const emailOfKey = new Map(users.map((user) => [keyOf(user), user.email]));
    const notDelivered = ledger.effective.unknown.filter((key) => !reached.has(emailOfKey.get(key) ?? ''));
    const unknown: UnknownCounts = {
      rows: unknownKeys.size,
      delivered: unknownKeys.size - notDelivered.length,
      notDelivered,
      openAtKills: kills.reduce((sum, kill) => sum + kill.openSends.length, 0),
      upstreamFailures: sesProxy.stats.upstreamFailures,
      unexplained: ledger.effective.unknown.filter(
        (key) =>
          !undecided.has(key) && !sesProxy.stats.upstreamFailures.some((failure) => failure.key === key),
      ),
    };
    const silentlyMissing = users
      .filter((user) => !reached.has(user.email) && !unknownKeys.has(keyOf(user)))
      .map((user) => user.email);
    let operator: OperatorStep = { enabled: false, resent: 0, outcomes: {}, errors: [] };
    if (options.operatorResend) {
      operator = await operatorResend(apiUrl, adminToken, notDelivered);
      if (operator.resent > 0) log(`operator: resent ${operator.resent} unknown rows SES had no email for`);
      operator.after = countDeliveries(await readStore(), addresses, subject);
    }
    const deadLetters = await readDeadLetters(apiUrl, adminToken, malformed, {
      trail,
      databaseUrl,
      undecided,
      maxReceiveCount: options.maxReceiveCount,
      delivered: (eventId) => reached.has(emailOfKey.get(eventId) ?? ''),
    });
    const queues: QueueCounts[] = await Promise.all(
      [
        { name: JOBS_QUEUE, url: jobsUrl, dlq: host.queueUrls[`${JOBS_QUEUE}-dlq`] },
        { name: EMAIL_QUEUE, url: emailUrl, dlq: host.queueUrls[`${EMAIL_QUEUE}-dlq`] },
      ].map(async (queue) => {
        const depth = await queueDepth(sqs, queue.url);
        const dlq = await queueDepth(sqs, queue.dlq);
        return { name: queue.name, ...depth, deadLetters: messagesLeft(dlq, { withDelayed: false }) };
      }),
    );

    const delete500 = sqsProxy.stats;
    const slow = sesProxy.stats.slowSends;
    const injections: Injection[] = [
      {
        name: `duplicate email messages (${Math.round(options.duplicateShare * 100)}% of users)`,
        target: duplicateTarget,
        done: duplicatesSent,
        detail: 'exact copies of fan-out bodies, half at once, half 1-15 s later',
      },
      {
        name: 'job message copies for the slot',
        target: options.jobCopies,
        done: jobsSent,
        detail: options.jobCopies > 1 ? `${options.jobCopies - 1} at fire time, 1 mid-run` : undefined,
      },
      {
        name: 'malformed messages',
        target: malformed.email.length + malformed.jobs.length,
        done: malformedSent,
        detail: `not JSON, wrong shape, no eventId (×${options.malformed} on send-email), a job without eventId`,
      },
      {
        name: `failed DeleteMessage(Batch) (${Math.round(options.deleteFailureShare * 100)}%, HTTP 500)`,
        target: options.deleteFailureShare > 0 ? 1 : 0,
        done: delete500.deletesFailed,
        detail: `${delete500.deletesFailed} receipts of ${delete500.deleteCalls} delete calls; ${delete500.deleteFaultAnswers} 500s incl. SDK retries`,
      },
      {
        name: `SendEmail held ${options.slowDelayMs / 1000} s (visibility ${options.visibilityTimeout} s)`,
        target: options.slowSends,
        done: slow['before-forward'] + slow['after-accept'],
        detail: `${slow['after-accept']} after SES accepted, ${slow['before-forward']} before`,
      },
      {
        name: 'SIGKILL of the worker fanning out',
        target: options.fanoutKills,
        done: kills.filter((kill) => kill.kind === 'fan-out').length,
      },
      {
        name: 'SIGKILL of a worker mid-send',
        target: options.kills,
        done: kills.filter((kill) => kill.kind === 'send').length,
      },
      {
        name: `redis-server restart (${options.redisPersistence === 'none' ? 'keys lost' : 'AOF keeps keys'}${claimsCluster ? '; claims on the cluster' : ''})`,
        target: options.redisRestarts,
        done: redisRestarts,
        detail: `${options.redisDowntimeMs / 1000} s down each`,
      },
    ];
    const workers = activeFleet.workers.map((worker) => ({
      label: worker.label,
      fate: worker.fate,
      peakRssKib: worker.peakRssKib,
      crashCause: worker.crashCause,
    }));
    harnessErrors.push(...pending.errors);
    const partial: Omit<ChaosReport, 'ok' | 'violations'> = {
      seed: options.seed,
      slot,
      options,
      claimsRedis,
      durationMs: Date.now() - started,
      drainMs: drainedAt !== undefined ? drainedAt - fired : undefined,
      drained,
      injections,
      kills,
      delivery,
      silentlyMissing,
      ledger,
      unknown,
      operator,
      deadLetters,
      queues,
      receives: trail.receiveSummary(EMAIL_QUEUE, options.maxReceiveCount),
      workers,
      runDir,
      harnessErrors,
    };
    const violations = findViolations(partial);
    return { ...partial, ok: violations.length === 0, violations };
  } finally {
    for (const step of cleanup.reverse()) {
      await step().catch((error: unknown) => {
        if (options.verbose) process.stderr.write(`[chaos] cleanup: ${String(error)}\n`);
      });
    }
  }
}
