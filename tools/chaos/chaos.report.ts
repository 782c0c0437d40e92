import type { ChaosOptions } from './chaos.options';
import type { KillPoint } from './fault.proxy';
import type { ReceiveSummary } from './message.trail';

/** One fault: how many were asked for and how many the run really performed. */
export interface Injection {
  name: string;
  target: number;
  done: number;
  detail?: string;
}

export interface KillRecord {
  kind: 'fan-out' | 'send';
  point: KillPoint;
  victim: string;
  replacement?: string;
  atMs: number;
  /** Idempotency keys of the victim's SendEmail calls that were open when it died. */
  openSends: string[];
  /** How many email keys the victim had received: a kill can leave any of them undecided. */
  receivedKeys: number;
}

export interface DeliveryCounts {
  expected: number;
  /** Digest emails for the slot the SES emulator stored, duplicates included. */
  emails: number;
  recipients: number;
  /** Emails beyond the first per recipient. */
  duplicates: number;
  duplicateRecipients: number;
  missing: number;
  /** Digest emails to someone who is not a seeded user. */
  unexpected: number;
  /** Stored emails that are not this slot's digest (not counted above). */
  otherEmails: number;
  worstDuplicates: Array<{ recipient: string; count: number }>;
  missingSample: string[];
}

export interface LedgerCounts {
  present: boolean;
  rows: number;
  /** Stored statuses (a stored `pending` row may read as `unknown` or `failed`, see `effective`). */
  byStatus: Record<string, number>;
  keysWithoutRow: number;
  /** Digest emails in SES whose MessageId no ledger row records (a send the ledger does not know finished). */
  sesEmailsUnrecorded?: number;
  /** Rows whose first sender stopped before calling SES and that a redelivery took over. */
  takenOver: number;
  /** Rows a redelivery resent after a retryable failure (SES certainly had not taken them). */
  workerResends: number;
  /** What the admin API (`GET /admin/mail?status=`) lists for the slot's keys, by effective status. */
  effective: { unknown: string[]; failed: string[]; pending: string[] };
  adminApi: 'ok' | string;
}

/** `unknown` rows: SES may have the email. Never resent automatically (at most once). */
export interface UnknownCounts {
  rows: number;
  /** SES has the email: the recipient got it once; the ledger just cannot know. */
  delivered: number;
  /** SES never got it: missing, surfaced for an operator. */
  notDelivered: string[];
  /** SendEmail calls open in the killed workers when they died. */
  openAtKills: number;
  /** SendEmail calls the SES proxy could not forward (upstream socket error, not injected). */
  upstreamFailures: { key: string; label: string; error: string }[];
  /** Unknown rows neither a kill nor an upstream failure explains. */
  unexplained: string[];
}

/** The operator's documented move: resend the `unknown` rows SES has no record of, through the admin API. */
export interface OperatorStep {
  enabled: boolean;
  resent: number;
  outcomes: Record<string, number>;
  errors: string[];
  /** The SES count after the resends. */
  after?: DeliveryCounts;
}

/**
 * Well-formed email dead letters the fault model alone explains: the digest was delivered, and
 * every receive ended in an injected failed delete (no deferral, no expiry, no worker choice).
 */
export function deletesAlone(deadLetters: Pick<DeadLetterCounts, 'wellFormed'>): number {
  return deadLetters.wellFormed.filter(
    (letter) => letter.queue === 'send-email' && letter.delivered && letter.onlyFailedDeletes,
  ).length;
}

/** A well-formed message found in a dead-letter queue, with what the run saw happen to it. */
export interface DeadLetterEvidence {
  queue: 'send-email' | 'jobs';
  eventId?: string;
  messageId: string;
  /** `once-source-message-id`: set when the worker copied it there itself. */
  sourceMessageId: string | null;
  /** `ApproximateReceiveCount` in the DLQ (the admin API's peek). */
  receiveCount: number;
  /** `once-dead-letter-reason`; null: SQS's redrive moved it after `maxReceiveCount` receives. */
  reason: string | null;
  sentAt: string | null;
  /** A killed worker had received this eventId. */
  heldByKilledWorker: boolean;
  /**
   * The SES emulator has the digest for this key (by the system, before the operator): the dead
   * letter is a copy of a delivered message, a DLQ alarm rather than a lost email.
   */
  delivered: boolean;
  /** The mail ledger row for the eventId at the end of the run. */
  ledger?: { status: string; attempts: number; sesCalledAt: string | null; history: string };
  /** What ended each receive of the dead-lettered message (deferral by whom, failed delete, nothing). */
  diagnosis: string;
  /** Every receive ended in an injected failed delete: the fault model alone dead-lettered it. */
  onlyFailedDeletes: boolean;
  /** The SQS history of every message carrying this eventId (original, copies, re-sends). */
  trail: string[];
}

export interface DeadLetterCounts {
  adminApi: 'ok' | string;
  /** Malformed bodies injected (send-email and jobs). */
  injected: number;
  /** Of those, how many the admin API shows in a dead-letter queue. */
  found: number;
  /** DLQ messages carrying an injected body (a malformed message dead-lettered twice counts twice). */
  copies: number;
  /** Well-formed digest messages in the email DLQ: emails given up on. */
  digestMessages: number;
  /** Well-formed job messages in the jobs DLQ. */
  jobMessages: number;
  /** Messages in both dead-letter queues per the admin API's queue list. */
  depth: number;
  /** Dead letters the admin API returned (it shows at most 100 per queue). */
  peeked: number;
  reasons: string[];
  /** Evidence for each well-formed dead letter (at most 20). */
  wellFormed: DeadLetterEvidence[];
}

export interface QueueCounts {
  name: string;
  visible: number;
  inFlight: number;
  delayed: number;
  deadLetters: number;
}

export interface WorkerSummary {
  label: string;
  fate: string;
  peakRssKib?: number;
  /** First error line of a crashed worker's log. */
  crashCause?: string;
}

export interface ChaosReport {
  ok: boolean;
  violations: string[];
  seed: number;
  slot: string;
  options: ChaosOptions;
  /** Which Redis held the dedup claims ({@link claimsRedisLine}). */
  claimsRedis: string;
  durationMs: number;
  /** Time from firing the job to the drained queues. */
  drainMs?: number;
  drained: boolean;
  injections: Injection[];
  kills: KillRecord[];
  /** What the system delivered on its own, before any operator action. */
  delivery: DeliveryCounts;
  /** Missing recipients whose row the admin API does not list as `unknown`: lost without a trace. */
  silentlyMissing: string[];
  ledger: LedgerCounts;
  unknown: UnknownCounts;
  operator: OperatorStep;
  deadLetters: DeadLetterCounts;
  queues: QueueCounts[];
  /** What ended the email queue's receives, from the SQS proxy's trail. */
  receives?: ReceiveSummary;
  workers: WorkerSummary[];
  runDir: string;
  harnessErrors: string[];
}

export interface NaiveReport {
  events: number;
  messages: number;
  consumers: number;
  emails: number;
  duplicates: number;
  duplicateEvents: number;
  missing: number;
  durationMs: number;
}

interface StoredEmail {
  messageId: string;
  destination: { to: string[] };
  subject: string;
}

/** Counts this slot's digests in the SES emulator per recipient. */
export function countDeliveries(
  emails: readonly StoredEmail[],
  expectedRecipients: readonly string[],
  subject: string,
): DeliveryCounts {
  const expected = new Set(expectedRecipients);
  const perRecipient = new Map<string, number>();
  let digests = 0;
  let unexpected = 0;
  let other = 0;
  for (const email of emails) {
    if (email.subject !== subject) {
      other++;
      continue;
    }
    digests++;
    for (const recipient of email.destination.to) {
      if (!expected.has(recipient)) unexpected++;
      perRecipient.set(recipient, (perRecipient.get(recipient) ?? 0) + 1);
    }
  }
  const counts = [...perRecipient.entries()].filter(([recipient]) => expected.has(recipient));
  const duplicated = counts.filter(([, count]) => count > 1);
  const missing = expectedRecipients.filter((recipient) => !perRecipient.has(recipient));
  return {
    expected: expected.size,
    emails: digests,
    recipients: counts.length,
    duplicates: duplicated.reduce((sum, [, count]) => sum + count - 1, 0),
    duplicateRecipients: duplicated.length,
    missing: missing.length,
    unexpected,
    otherEmails: other,
    worstDuplicates: duplicated
      .sort((a, b) => b[1] - a[1])
      .slice(0, 5)
      .map(([recipient, count]) => ({ recipient, count })),
    missingSample: missing.slice(0, 5),
  };
}

/** What must hold after a chaos run; each broken rule is one line. */
export function findViolations(report: Omit<ChaosReport, 'ok' | 'violations'>): string[] {
  const violations: string[] = [];
  const { delivery, ledger, deadLetters } = report;
  if (!report.drained)
    violations.push(`queues did not drain within ${Math.round(report.options.timeoutMs / 1000)} s`);
  if (delivery.duplicates > 0) {
    const worst = delivery.worstDuplicates.map((item) => `${item.recipient} ×${item.count}`).join(', ');
    violations.push(
      `${delivery.duplicates} duplicate emails to ${delivery.duplicateRecipients} recipients (e.g. ${worst})`,
    );
  }
  if (report.silentlyMissing.length > 0)
    violations.push(
      `${report.silentlyMissing.length} recipients never got the digest and their row is not \`unknown\` (e.g. ${report.silentlyMissing
        .slice(0, 5)
        .join(', ')})`,
    );
  if (delivery.unexpected > 0)
    violations.push(`${delivery.unexpected} digests to addresses that are not users`);
  if (ledger.present && ledger.rows > 0) {
    if (ledger.keysWithoutRow > 0)
      violations.push(`mail_ledger has no row for ${ledger.keysWithoutRow} keys`);
    if (ledger.adminApi !== 'ok') violations.push(`admin API (mail ledger): ${ledger.adminApi}`);
    const { failed, pending } = ledger.effective;
    if (pending.length > 0)
      violations.push(`mail_ledger left ${pending.length} sends pending after the queues drained`);
    if (failed.length > 0)
      violations.push(
        `mail_ledger left ${failed.length} sends failed (e.g. ${failed.slice(0, 3).join(', ')})`,
      );
  }
  if (report.unknown.unexplained.length > 0)
    violations.push(
      `${report.unknown.unexplained.length} unknown rows whose message no killed worker had received (e.g. ${report.unknown.unexplained
        .slice(0, 3)
        .join(', ')})`,
    );
  const after = report.operator.after;
  if (after && after.duplicates > 0)
    violations.push(`the operator's resends of unknown rows duplicated ${after.duplicates} emails`);
  if (after && after.missing > 0)
    violations.push(
      `${after.missing} recipients still missing after the operator's resends (e.g. ${after.missingSample.join(', ')})`,
    );
  for (const error of report.operator.errors) violations.push(`operator resend: ${error}`);
  if (deadLetters.adminApi !== 'ok') violations.push(`admin API: ${deadLetters.adminApi}`);
  if (deadLetters.found < deadLetters.injected) {
    const capped =
      deadLetters.peeked < deadLetters.depth
        ? ` (it listed ${deadLetters.peeked} of ${deadLetters.depth} dead letters)`
        : '';
    violations.push(
      `only ${deadLetters.found} of ${deadLetters.injected} malformed messages are in a DLQ per the admin API${capped}`,
    );
  }
  const byDeletes = deletesAlone(deadLetters);
  if (deadLetters.digestMessages > byDeletes) {
    const shown = deadLetters.wellFormed.filter((letter) => letter.queue === 'send-email');
    const delivered = shown.filter((letter) => letter.delivered).length;
    violations.push(
      `${deadLetters.digestMessages - byDeletes} well-formed email messages ended in the DLQ` +
        (shown.length > 0
          ? ` (of ${shown.length} examined, ${delivered} were copies of a delivered digest, ${shown.length - delivered} had none; e.g. ${shown[0].eventId}: ${shown[0].diagnosis.split(' | ')[0]})`
          : ''),
    );
  }
  if (deadLetters.jobMessages > 0)
    violations.push(`${deadLetters.jobMessages} well-formed job messages ended in the DLQ`);
  for (const queue of report.queues) {
    if (queue.visible + queue.inFlight + queue.delayed > 0)
      violations.push(
        `queue ${queue.name} not empty at the end (visible ${queue.visible}, in flight ${queue.inFlight})`,
      );
  }
  for (const injection of report.injections) {
    if (injection.done < injection.target)
      violations.push(`not exercised: ${injection.name} (${injection.done} of ${injection.target})`);
  }
  const crashed = report.workers.filter((worker) => worker.fate === 'crashed');
  if (crashed.length > 0) {
    const causes = [...new Set(crashed.map((worker) => worker.crashCause ?? 'no error in its log'))];
    violations.push(
      `${crashed.length} worker processes exited on their own (${crashed
        .slice(0, 6)
        .map((worker) => worker.label)
        .join(', ')}${crashed.length > 6 ? ', …' : ''}); causes: ${causes.slice(0, 3).join(' | ')}`,
    );
  }
  for (const error of report.harnessErrors) violations.push(`harness: ${error}`);
  return violations;
}

const int = (value: number) => value.toLocaleString('en-US');

function table(rows: Array<[string, string, string, string?]>, headers: [string, string, string]): string[] {
  const widths = [0, 1, 2].map((i) =>
    Math.max(headers[i].length, ...rows.map((row) => (row[i] ?? '').length)),
  );
  const line = (row: [string, string, string, string?]) =>
    `  ${row[0].padEnd(widths[0])}  ${row[1].padStart(widths[1])}  ${row[2].padStart(widths[2])}${
      row[3] ? `  ${row[3]}` : ''
    }`;
  return [line(headers), ...rows.map(line)];
}

/** The report's line on where the dedup claims lived: the run's redis-server, or the cluster's `host:port` nodes. */
export function claimsRedisLine(redisUrl: string, clusterNodes?: readonly string[]): string {
  return clusterNodes
    ? `dedup claims on a Redis Cluster of ${clusterNodes.length} masters (DEDUP_REDIS_CLUSTER_NODES=${clusterNodes.join(',')}); REDIS_URL ${redisUrl} keeps the rate limiter and the restarts`
    : `dedup claims on the run's redis-server (REDIS_URL ${redisUrl}), restarts included`;
}

/** The summary table printed by `npm run chaos`. */
export function formatChaosReport(report: ChaosReport, naive?: NaiveReport): string {
  const { delivery, ledger, deadLetters, options } = report;
  const out: string[] = [];
  const replacements = report.workers.length - options.workers;
  out.push(
    `Once chaos run: seed ${report.seed}, ${int(options.users)} users, ${options.workers} workers` +
      `${replacements > 0 ? ` (+${replacements} started as replacements)` : ''}, slot ${report.slot}, ` +
      `DEDUP_ENABLED=${options.dedup}, ${(report.durationMs / 1000).toFixed(1)} s` +
      `${report.drainMs !== undefined ? ` (fire → drained ${(report.drainMs / 1000).toFixed(1)} s)` : ''}`,
  );
  out.push(report.claimsRedis);
  out.push('');
  out.push(
    ...table(
      report.injections.map((injection) => [
        injection.name,
        int(injection.target),
        int(injection.done),
        injection.detail,
      ]),
      ['injected', 'target', 'done'],
    ),
  );
  out.push('');
  const ledgerCell = ledger.present ? (ledger.rows > 0 ? int(ledger.rows) : '0 (unused)') : 'no table';
  const statuses = Object.entries(ledger.byStatus)
    .map(([status, count]) => `${status} ${int(count)}`)
    .join(', ');
  const queues = report.queues.map((queue) => `${queue.name} ${queue.visible}/${queue.inFlight}`).join(', ');
  const { unknown, operator } = report;
  const surfaced = delivery.missing - report.silentlyMissing.length;
  const after = operator.after;
  const rows: Array<[string, string, string, string?]> = [
    ['digests in the SES emulator', int(delivery.expected), int(delivery.emails)],
    ['recipients reached', int(delivery.expected), int(delivery.recipients)],
    ['duplicate emails (extra sends)', '0', int(delivery.duplicates)],
    ['recipients mailed more than once', '0', int(delivery.duplicateRecipients)],
    [
      'missing recipients, silently (row not unknown)',
      '0',
      int(report.silentlyMissing.length),
      report.silentlyMissing.slice(0, 3).join(', '),
    ],
    [
      'missing recipients, surfaced as unknown',
      '-',
      int(surfaced),
      surfaced > 0 ? 'a kill cut the SendEmail before SES got it; an operator decides' : undefined,
    ],
    ['digests to non-users', '0', int(delivery.unexpected)],
    [
      'mail_ledger rows for the slot',
      ledger.present ? int(delivery.expected) : '-',
      ledgerCell,
      [
        statuses ? `stored: ${statuses}` : '',
        ledger.sesEmailsUnrecorded !== undefined && ledger.rows > 0
          ? `${int(ledger.sesEmailsUnrecorded)} SES emails whose MessageId the ledger lacks`
          : '',
      ]
        .filter(Boolean)
        .join('; '),
    ],
    [
      'ledger unknown (a kill cut the send)',
      '-',
      int(unknown.rows),
      `${int(unknown.delivered)} reached SES (delivered once), ${int(unknown.notDelivered.length)} never did; ` +
        `${int(unknown.openAtKills)} SendEmail calls were open at the kills`,
    ],
    [
      'SendEmail calls the proxy could not forward',
      '-',
      int(unknown.upstreamFailures.length),
      unknown.upstreamFailures.length > 0
        ? `not injected: the emulator's socket failed (${unknown.upstreamFailures[0]?.error}); the worker got a 502, so unknown`
        : '',
    ],
    [
      'ledger unknown, neither killed nor unforwarded',
      '0',
      int(unknown.unexplained.length),
      'nothing explains these',
    ],
    [
      'ledger failed or pending at the end',
      '0',
      int(ledger.effective.failed.length + ledger.effective.pending.length),
      ledger.adminApi === 'ok' ? 'per GET /admin/mail?status=' : ledger.adminApi,
    ],
    [
      'sends taken over (sender died before SES)',
      '-',
      int(ledger.takenOver),
      'delivered by a redelivery; SES had never seen them',
    ],
    [
      'resent after a retryable failure',
      '-',
      int(ledger.workerResends),
      'rate limiter down, or abandoned rows read as failed',
    ],
    [
      'malformed messages in a DLQ (admin API)',
      int(deadLetters.injected),
      int(deadLetters.found),
      deadLetters.adminApi === 'ok'
        ? `${int(deadLetters.copies)} copies; DLQ depth per GET /admin/queues: ${int(deadLetters.depth)}`
        : deadLetters.adminApi,
    ],
    [
      'well-formed messages lost to a DLQ',
      '0',
      int(deadLetters.digestMessages + deadLetters.jobMessages - deletesAlone(deadLetters)),
    ],
    [
      '… dead-lettered by injected failed deletes alone',
      '-',
      int(deletesAlone(deadLetters)),
      'delivered copies whose every receive ended in a failed delete: SQS would not let them go',
    ],
    ['queues empty at the end (visible/in flight)', 'yes', report.drained ? 'yes' : 'NO', queues],
  ];
  if (operator.enabled) {
    rows.push([
      'operator: resends of unknown rows SES lacks',
      int(unknown.notDelivered.length),
      int(operator.resent),
      `POST /admin/mail/:key/resend; ${Object.entries(operator.outcomes)
        .map(([status, count]) => `${status} ${count}`)
        .join(', ')}`,
    ]);
    if (after) {
      rows.push(
        ['after the operator: digests', int(after.expected), int(after.emails)],
        ['after the operator: duplicate emails', '0', int(after.duplicates)],
        ['after the operator: missing recipients', '0', int(after.missing)],
      );
    }
  }
  out.push(...table(rows, ['outcome', 'expected', 'actual']));
  if (report.kills.length > 0) {
    out.push('');
    for (const kill of report.kills) {
      const what =
        kill.kind === 'fan-out'
          ? 'mid fan-out: SQS had accepted its SendMessageBatch, the answer never came back'
          : kill.point === 'after-accept'
            ? 'mid send: SES had accepted the email, the answer never came back'
            : 'mid send: its SendEmail left the worker and never reached SES';
      out.push(
        `  SIGKILL ${kill.victim} at ${(kill.atMs / 1000).toFixed(1)} s, ${what}` +
          `${kill.replacement ? `; replaced by ${kill.replacement}` : ''}; ${kill.openSends.length} SendEmail calls open`,
      );
    }
  }
  const tally = (ends: Record<string, number>) =>
    Object.entries(ends)
      .sort((a, b) => b[1] - a[1])
      .map(([end, count]) => `${int(count)} ${end}`)
      .join(', ');
  if (report.receives) {
    const { receives } = report;
    out.push(
      `  email receives: ${int(receives.receives)} of ${int(receives.messages)} messages, ended by ${tally(receives.ends)}`,
    );
    out.push(
      `  within one receive of maxReceiveCount ${options.maxReceiveCount}: ${int(receives.nearLimit)} messages` +
        (receives.nearLimit > 0 ? `, their receives ended by ${tally(receives.nearLimitEnds)}` : ''),
    );
  }
  if (deadLetters.wellFormed.length > 0) {
    out.push('');
    out.push(
      `  well-formed dead letters (${deadLetters.wellFormed.length} of ${deadLetters.digestMessages + deadLetters.jobMessages} shown):`,
    );
    for (const letter of deadLetters.wellFormed) {
      out.push(
        `  - ${letter.queue} ${letter.eventId ?? '(no eventId)'}: DLQ message ${letter.messageId}` +
          `${letter.sourceMessageId ? ` (copy of ${letter.sourceMessageId})` : ''}, receive count ${letter.receiveCount}, ` +
          `reason ${letter.reason ?? 'none (SQS redrive)'}${letter.heldByKilledWorker ? ', a killed worker had received it' : ''}; ` +
          (letter.delivered ? 'SES has its digest (not lost, but a DLQ alarm)' : 'SES has NO digest for it'),
      );
      out.push(`      why: ${letter.diagnosis}`);
      if (letter.ledger)
        out.push(
          `      ledger: ${letter.ledger.status}, ${letter.ledger.attempts} attempts, ses_called_at ${letter.ledger.sesCalledAt ?? 'null'}, history ${letter.ledger.history}`,
        );
      for (const line of letter.trail) out.push(`      trail: ${line}`);
    }
  }
  const rss = report.workers
    .filter((worker) => worker.peakRssKib)
    .map((worker) => `${worker.label} ${Math.round((worker.peakRssKib ?? 0) / 1024)} MiB`);
  if (rss.length > 0) out.push(`  peak RSS: ${rss.join(', ')}`);
  out.push(`  logs: ${report.runDir}`);
  if (naive) {
    out.push('');
    out.push(formatNaive(naive));
    out.push(
      `  this run, under every fault above: ${int(delivery.duplicates)} duplicate emails, ${int(delivery.missing)} missing, for ${int(delivery.expected)} users`,
    );
  }
  out.push('');
  if (report.ok)
    out.push(
      operator.enabled
        ? 'RESULT: PASS: every user got the digest exactly once (the system alone, plus the operator for unknown sends SES never got); malformed messages are in the DLQ'
        : 'RESULT: PASS: no duplicate, no silent loss, every undecided send surfaced as unknown; malformed messages are in the DLQ',
    );
  else {
    out.push(
      `RESULT: FAIL: ${report.violations.length} violation${report.violations.length === 1 ? '' : 's'}`,
    );
    for (const violation of report.violations) out.push(`  - ${violation}`);
  }
  return out.join('\n');
}

/** One seed's outcome in a multi-seed run: its report, or the error that stopped the harness. */
export type SeedOutcome =
  { seed: number; report: ChaosReport } | { seed: number; error: string; durationMs: number };

/** The `--seeds` summary: one row per seed, PASS/FAIL and the first violation. */
export function formatSeedSummary(outcomes: readonly SeedOutcome[]): string {
  const headers = [
    'seed',
    'users',
    'duplicates',
    'silent losses',
    "DLQ'd well-formed",
    'unknown',
    'resent',
    'malformed in DLQ',
    'wall time',
    'result',
  ];
  const rows = outcomes.map((outcome) => {
    if ('error' in outcome)
      return [
        String(outcome.seed),
        '-',
        '-',
        '-',
        '-',
        '-',
        '-',
        '-',
        `${(outcome.durationMs / 1000).toFixed(1)} s`,
        `FAIL: harness error: ${outcome.error.split('\n')[0]}`,
      ];
    const { report } = outcome;
    const { deadLetters } = report;
    return [
      String(report.seed),
      int(report.options.users),
      int(report.delivery.duplicates),
      int(report.silentlyMissing.length),
      deletesAlone(deadLetters) > 0
        ? `${int(deadLetters.digestMessages + deadLetters.jobMessages - deletesAlone(deadLetters))} (+${deletesAlone(deadLetters)} by deletes alone)`
        : int(deadLetters.digestMessages + deadLetters.jobMessages),
      int(report.unknown.rows),
      int(report.operator.resent),
      `${int(deadLetters.found)}/${int(deadLetters.injected)}`,
      `${(report.durationMs / 1000).toFixed(1)} s`,
      report.ok ? 'PASS' : `FAIL (${report.violations.length}): ${report.violations[0]}`,
    ];
  });
  const widths = headers.map((header, i) => Math.max(header.length, ...rows.map((row) => row[i].length)));
  const last = headers.length - 1;
  const line = (row: string[]) =>
    `  ${row.map((cell, i) => (i === last ? cell : i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ')}`;
  const failed = outcomes.filter((outcome) => 'error' in outcome || !outcome.report.ok).length;
  return [
    `Chaos across ${outcomes.length} seeds: ${outcomes.length - failed} PASS, ${failed} FAIL`,
    line(headers),
    ...rows.map(line),
    failed > 0
      ? `Replay a failing seed: npm run chaos -- --seed ${outcomes.find((outcome) => 'error' in outcome || !outcome.report.ok)?.seed} (same other flags)`
      : '',
  ]
    .filter(Boolean)
    .join('\n');
}

export function formatNaive(naive: NaiveReport): string {
  return (
    `Naive baseline ("look up processed table, send, mark"; ${naive.consumers} consumers, ${int(naive.events)} events, ` +
    `${int(naive.messages)} messages, no other fault): ${int(naive.emails)} emails, ` +
    `${int(naive.duplicates)} duplicates (${int(naive.duplicateEvents)} events sent more than once), ` +
    `${int(naive.missing)} missing, ${(naive.durationMs / 1000).toFixed(1)} s`
  );
}
