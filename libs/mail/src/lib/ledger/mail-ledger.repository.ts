import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import DataLoader from 'dataloader';
import { DataSource, EntityManager, type QueryRunner } from 'typeorm';
import { addressKey } from '../address/mail-address';
import { queryRows } from '../database/query-rows.util';
import { MAIL_OPTIONS, type ResolvedMailOptions } from '../mail.options';
import type {
  MailDeliveryStatus,
  MailLedgerEntry,
  MailLedgerEvent,
  MailLedgerListQuery,
  MailLedgerPage,
  MailLedgerStatus,
} from '../mail.types';
import type { StoredMailMessage } from './mail-ledger.entity';

/** A raw `mail_ledger` row with its effective status. */
export interface LedgerRow {
  idempotency_key: string;
  status: MailLedgerStatus;
  effective_status: MailLedgerStatus;
  recipients: string[];
  sender: string;
  subject: string;
  message: StoredMailMessage;
  content_hash: string;
  attempts: number;
  claim_token: string;
  ses_message_id: string | null;
  error: string | null;
  retryable: boolean | null;
  delivery_status: MailDeliveryStatus | null;
  last_resend_by: string | null;
  last_resend_at: Date | null;
  history: MailLedgerEvent[];
  attempt_started_at: Date;
  ses_called_at: Date | null;
  /** Pending rows: milliseconds until the row leaves its in-flight window. */
  pending_for_ms: number | null;
  created_at: Date;
  updated_at: Date;
  created_at_cursor: string;
}

export interface NewLedgerRow {
  idempotencyKey: string;
  status: 'pending' | 'suppressed';
  recipients: string[];
  message: StoredMailMessage;
  contentHash: string;
  claimToken: string;
  suppressed: string[];
}

export type LedgerOutcome =
  | { status: 'sent'; sesMessageId: string }
  | {
      status: 'failed';
      error: string;
      retryable: boolean;
      /** The attempt was stamped but did not call SES after all: the stamp is cleared. */
      sesNotCalled?: boolean;
    }
  | { status: 'unknown'; error: string }
  | { status: 'suppressed'; suppressed: string[] };

/**
 * What the stamp before an SES call found: `stamped` with the recipients still allowed (and those
 * suppressed since the send started); `suppressed` when none is left (the row is now `suppressed`
 * and SES must not be called); `not-owned` when the attempt lost the row (taken over, resent, or
 * suppressed by a suppression that stopped it).
 */
export type SesCallStamp =
  | { status: 'stamped'; recipients: string[]; suppressed: string[] }
  | { status: 'suppressed'; suppressed: string[] }
  | { status: 'not-owned' };

/** A stamp function's answer: its outcome and the recipients it found suppressed. */
interface StampRow<Other extends string> {
  outcome: 'stamped' | 'suppressed' | Other;
  suppressed: string[] | null;
}

/** A stamp function's answer as a stamp of `recipients` (those it found suppressed left out). */
function toStamp<Other extends 'not-owned' | 'exists' | 'busy'>(
  row: StampRow<Other>,
  recipients: readonly string[],
): Exclude<SesCallStamp, { status: 'not-owned' }> | { status: Other } {
  const suppressed = row.suppressed ?? [];
  if (row.outcome === 'suppressed') return { status: 'suppressed', suppressed };
  if (row.outcome !== 'stamped') return { status: row.outcome as Other };
  const blocked = new Set(suppressed);
  return { status: 'stamped', recipients: recipients.filter((address) => !blocked.has(address)), suppressed };
}

/** What a claim-and-stamp found: the stamp of the row it inserted, or `exists` (nothing written). */
export type ClaimStamp = Exclude<SesCallStamp, { status: 'not-owned' }> | { status: 'exists' };

/** A claim-and-stamp of a batch; `busy`: an address lock was taken, so it was left for alone. */
type BatchedClaimStamp = ClaimStamp | { status: 'busy' };

/** A first send's row as `claimAndStamp` inserts it (its status and suppressions are the statement's). */
type ClaimRow = Omit<NewLedgerRow, 'status' | 'suppressed'>;

/** A claim-and-stamp as the stamp functions take it. */
function claimItem(row: ClaimRow) {
  return {
    key: row.idempotencyKey,
    token: row.claimToken,
    recipients: row.message.to,
    keys: row.recipients,
    sender: row.message.from,
    subject: row.message.subject,
    message: row.message,
    contentHash: row.contentHash,
  };
}

/** A claim-and-stamp waiting for its batch, and when it was asked for (its budget runs from then). */
interface PendingClaim {
  readonly row: ClaimRow;
  readonly startedAt: number;
}

/** An outcome waiting for its batch. */
interface PendingOutcome {
  readonly idempotencyKey: string;
  readonly claimToken: string;
  readonly outcome: LedgerOutcome;
}

/**
 * Runs a batch `windowMs` after its first statement was asked for; 0: once the current turn of the
 * event loop has run (the statements of sends resumed by the same I/O), no timer.
 */
const afterWindow =
  (windowMs: number) =>
  (run: () => void): void => {
    if (windowMs === 0) setImmediate(run);
    else setTimeout(run, windowMs);
  };
const MAX_BATCH = 100;

/** The two windows of a pending row, as query parameters `$stale` and `$abandoned` (milliseconds). */
interface WindowParams {
  stale: number;
  abandoned: number;
}

const ms = (param: number) => `($${param}::bigint * interval '1 millisecond')`;
/** Pending, SES called longer ago than the stale window: SES may or may not have the email. */
const stalePending = ({ stale }: WindowParams) =>
  `(status = 'pending' AND ses_called_at IS NOT NULL AND ses_called_at < now() - ${ms(stale)})`;
/** Pending, SES never called, and the attempt is older than any rate-limit wait: its sender stopped. */
const abandonedPending = ({ abandoned }: WindowParams) =>
  `(status = 'pending' AND ses_called_at IS NULL AND attempt_started_at < now() - ${ms(abandoned)})`;

/**
 * Unknown, and its last SES call started longer ago than the stale window: that call cannot still
 * be open (the SES deadline is shorter), so a deliberate resend cannot overlap it.
 */
const settledUnknown = ({ stale }: WindowParams) =>
  `(status = 'unknown' AND (ses_called_at IS NULL OR ses_called_at < now() - ${ms(stale)}))`;

const ABANDONED_ERROR = 'abandoned before SES was called: the sender stopped; SES never saw this attempt';

const columns = (p: WindowParams) => `
  idempotency_key, status, recipients, sender, subject, message, content_hash, attempts, claim_token,
  ses_message_id, delivery_status, last_resend_by, last_resend_at, history,
  attempt_started_at, ses_called_at, created_at, updated_at, created_at::text AS created_at_cursor,
  CASE WHEN ${abandonedPending(p)} THEN '${ABANDONED_ERROR}' ELSE error END AS error,
  CASE WHEN ${abandonedPending(p)} THEN true ELSE retryable END AS retryable,
  CASE WHEN ${stalePending(p)} THEN 'unknown' WHEN ${abandonedPending(p)} THEN 'failed' ELSE status END
    AS effective_status,
  CASE WHEN status = 'pending'
       THEN greatest(0, ceil(extract(epoch FROM coalesce(ses_called_at + ${ms(p.stale)},
                                                       attempt_started_at + ${ms(p.abandoned)}) - now()) * 1000))::int
  END AS pending_for_ms`;

const historyEvent = (fields: string) =>
  `jsonb_build_array(jsonb_strip_nulls(jsonb_build_object('at', now(), ${fields})))`;

/** SQL for the send ledger. Internal: apps use MailService and MailLedgerService. */
@Injectable()
export class MailLedgerRepository {
  /** Concurrent first sends share one claim-and-stamp (see `statementBatching.claimWindowMs`). */
  private readonly claimBatches: DataLoader<PendingClaim, BatchedClaimStamp>;
  /** Outcomes recorded close together share one statement (see `statementBatching.outcomeWindowMs`). */
  private readonly outcomeBatches: DataLoader<PendingOutcome, boolean>;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @Inject(MAIL_OPTIONS) private readonly options: ResolvedMailOptions,
  ) {
    const { claimWindowMs, outcomeWindowMs } = options.statementBatching;
    this.claimBatches = new DataLoader((items) => this.claimAndStampMany(items), {
      cache: false,
      maxBatchSize: MAX_BATCH,
      batchScheduleFn: afterWindow(claimWindowMs),
    });
    this.outcomeBatches = new DataLoader((items) => this.completeMany(items), {
      cache: false,
      maxBatchSize: MAX_BATCH,
      batchScheduleFn: afterWindow(outcomeWindowMs),
    });
  }

  /** The windows as the parameters `$first` and `$first + 1`, appended to `params`. */
  private windows(params: unknown[]): WindowParams {
    params.push(this.options.staleAfterMs, this.options.abandonedAfterMs);
    return { stale: params.length - 1, abandoned: params.length };
  }

  /** Inserts the row unless the key exists. `inserted: false` returns the existing row. */
  async claim(row: NewLedgerRow): Promise<{ inserted: boolean; row: LedgerRow }> {
    const params: unknown[] = [
      row.idempotencyKey,
      row.status,
      row.recipients,
      row.message.from,
      row.message.subject,
      JSON.stringify(row.message),
      row.contentHash,
      row.claimToken,
      row.suppressed.length > 0 ? JSON.stringify(row.suppressed) : null,
    ];
    const inserted = await queryRows<LedgerRow>(
      this.dataSource,
      `INSERT INTO mail_ledger (idempotency_key, status, recipients, sender, subject, message, content_hash, claim_token, history)
       VALUES ($1, $2, $3::text[], $4, $5, $6::jsonb, $7, $8,
               ${historyEvent(`'event', $2::text, 'attempt', 1, 'suppressed', $9::jsonb`)})
       ON CONFLICT (idempotency_key) DO NOTHING
       RETURNING ${columns(this.windows(params))}`,
      params,
    );
    if (inserted[0]) return { inserted: true, row: inserted[0] };
    const existing = await this.find(row.idempotencyKey);
    if (!existing) throw new Error(`mail_ledger row "${row.idempotencyKey}" vanished during claim`);
    return { inserted: false, row: existing };
  }

  async find(
    idempotencyKey: string,
    db: DataSource | EntityManager = this.dataSource,
  ): Promise<LedgerRow | undefined> {
    const params: unknown[] = [idempotencyKey];
    const rows = await queryRows<LedgerRow>(
      db,
      `SELECT ${columns(this.windows(params))} FROM mail_ledger WHERE idempotency_key = $1`,
      params,
    );
    return rows[0];
  }

  /**
   * Stamps the attempt owned by `claimToken` as calling SES, right before each call, and re-checks
   * the suppression list for `recipients` (addresses as they would be sent) in the same
   * transaction. The stamp takes the shared lock of each recipient (see `lockAddressKeys`) before
   * it reads the list, so a suppression either committed before and is seen, or waits until this
   * stamp commits (its SES call is then in flight). Recipients found suppressed are left out (and
   * recorded in the history); with none left the row is recorded `suppressed` and not stamped.
   */
  async markSesCall(
    idempotencyKey: string,
    claimToken: string,
    recipients: readonly string[],
  ): Promise<SesCallStamp> {
    return this.stampAlone<'not-owned'>(
      Date.now(),
      `SELECT outcome, suppressed FROM mail_stamp_ses_call($1, $2, $3::text[], $4::text[], $5)`,
      [idempotencyKey, claimToken, recipients, recipients.map(addressKey)],
      recipients,
    );
  }

  /**
   * A first send whose rate slot is already held, in one round trip: checks the suppression list
   * as {@link markSesCall} does (under the recipients' shared locks) and inserts the row already
   * stamped, with the recipients found suppressed left out (`stamped`); with every recipient
   * suppressed, the row is inserted `suppressed` and SES must not be called. `exists`: the key was
   * used before, nothing was written (see {@link find}). Throws when the budget ran out (nothing
   * written).
   */
  async claimAndStamp(row: ClaimRow): Promise<ClaimStamp> {
    const pending = { row, startedAt: Date.now() };
    const stamp = await this.claimBatches.load(pending);
    return stamp.status === 'busy' ? this.claimAndStampAlone(pending) : stamp;
  }

  /**
   * The claim-and-stamps of one batch in one statement (`mail_claim_and_stamp_many`), within what
   * is left of the budget of the one that waited longest; one whose budget is spent already fails
   * alone, before the statement. One whose address lock is taken (a suppression being recorded) is
   * `busy`: its caller goes on alone (`claimAndStampAlone`), and the others do not wait for it.
   */
  private async claimAndStampMany(items: readonly PendingClaim[]): Promise<(BatchedClaimStamp | Error)[]> {
    const out: (BatchedClaimStamp | Error | undefined)[] = new Array(items.length);
    await this.withinStampBudget(
      items.map((item) => item.startedAt),
      async (runner, leftMs) => {
        const live: number[] = [];
        leftMs.forEach((left, i) => {
          if (left > 0) live.push(i);
          else out[i] = this.overBudget();
        });
        if (live.length === 0) return;
        const rows: ({ idx: string | number } & StampRow<'exists' | 'busy'>)[] = await runner.query(
          'SELECT idx, outcome, suppressed FROM mail_claim_and_stamp_many($1::jsonb, $2)',
          [
            JSON.stringify(live.map((i) => claimItem((items[i] as PendingClaim).row))),
            Math.min(...live.map((i) => leftMs[i] as number)),
          ],
        );
        for (const row of rows) {
          const i = live[Number(row.idx) - 1];
          if (i === undefined) continue;
          out[i] = toStamp(row, (items[i] as PendingClaim).row.message.to);
        }
      },
    );
    return out.map((answer) => answer ?? new Error('the stamp function returned no row for this send'));
  }

  /** One claim-and-stamp by `mail_claim_and_stamp`, waiting for its address locks within its budget. */
  private claimAndStampAlone({ row, startedAt }: PendingClaim): Promise<ClaimStamp> {
    const item = claimItem(row);
    return this.stampAlone<'exists'>(
      startedAt,
      `SELECT outcome, suppressed FROM mail_claim_and_stamp($1, $2, $3::text[], $4::text[], $5, $6, $7::jsonb, $8, $9)`,
      [
        item.key,
        item.token,
        item.recipients,
        item.keys,
        item.sender,
        item.subject,
        JSON.stringify(item.message),
        item.contentHash,
      ],
      row.message.to,
    );
  }

  /**
   * One call of a one-send stamp function (its last parameter what is left of the budget of a call
   * started at `startedAt`), its answer as a stamp of `recipients`.
   */
  private async stampAlone<Other extends 'not-owned' | 'exists'>(
    startedAt: number,
    sql: string,
    params: unknown[],
    recipients: readonly string[],
  ): Promise<Exclude<SesCallStamp, { status: 'not-owned' }> | { status: Other }> {
    let stamp: Exclude<SesCallStamp, { status: 'not-owned' }> | { status: Other } | undefined;
    await this.withinStampBudget([startedAt], async (runner, [leftMs = 0]) => {
      if (leftMs <= 0) throw this.overBudget();
      const [row]: StampRow<Other>[] = await runner.query(sql, [...params, leftMs]);
      if (!row) throw new Error('the stamp function returned no row');
      stamp = toStamp(row, recipients);
    });
    return stamp as NonNullable<typeof stamp>;
  }

  private overBudget(): Error {
    return new Error(`the stamp took longer than its ${this.stampBudgetMs()} ms budget`);
  }

  /**
   * Runs `work` on a pooled connection with what is left of the stamp's budget of calls started at
   * `startedAt` (the wait for the connection counts); past the budget nothing is run.
   */
  private async withinStampBudget(
    startedAt: readonly number[],
    work: (runner: QueryRunner, leftMs: number[]) => Promise<void>,
  ): Promise<void> {
    const budgetMs = this.stampBudgetMs();
    const runner = this.dataSource.createQueryRunner();
    try {
      await runner.connect();
      const now = Date.now();
      await work(
        runner,
        startedAt.map((started) => budgetMs - (now - started)),
      );
    } finally {
      await runner.release();
    }
  }

  /**
   * How long a whole stamp may take: half the SES deadline, which starts before the stamp; the call
   * needs the other half (the dispatcher does not call SES with less, see `minSesCallMs`).
   */
  private stampBudgetMs(): number {
    return Math.max(1, Math.floor(this.options.sesRequestTimeoutMs / 2));
  }

  /**
   * Sends queued for these address keys that have not called SES, and whose every recipient is now
   * suppressed, become `suppressed` in the caller's transaction (the suppression's): they would
   * otherwise wait for their slot only to find it out at their stamp. Returns the keys stopped.
   */
  async suppressUnsent(db: EntityManager, keys: readonly string[]): Promise<string[]> {
    const rows = await queryRows<{ idempotency_key: string }>(
      db,
      `UPDATE mail_ledger l
          SET status = 'suppressed', updated_at = now(),
              history = history || ${historyEvent(`'event', 'suppressed-before-ses', 'attempt', attempts, 'suppressed', message->'to'`)}
        WHERE status = 'pending' AND ses_called_at IS NULL AND recipients && $1::text[]
          AND NOT EXISTS (SELECT 1 FROM unnest(l.recipients) AS r(email)
                           WHERE NOT EXISTS (SELECT 1 FROM mail_suppressions s WHERE s.email = r.email))
        RETURNING idempotency_key`,
      [keys],
    );
    return rows.map((row) => row.idempotency_key);
  }

  /**
   * Takes a pending row that never reached SES for a new attempt under `claimToken`, whatever its
   * age: the caller vouches that its first sender is gone, and the token check in
   * {@link markSesCall} keeps that sender from calling SES if it is not.
   */
  async takeOverUnsent(idempotencyKey: string, claimToken: string): Promise<LedgerRow | undefined> {
    const params: unknown[] = [idempotencyKey, claimToken];
    const rows = await queryRows<LedgerRow>(
      this.dataSource,
      `UPDATE mail_ledger
          SET claim_token = $2, attempts = attempts + 1, attempt_started_at = now(), updated_at = now(),
              history = history || ${historyEvent(`'event', 'taken-over', 'attempt', attempts + 1`)}
        WHERE idempotency_key = $1 AND status = 'pending' AND ses_called_at IS NULL
        RETURNING ${columns(this.windows(params))}`,
      params,
    );
    return rows[0];
  }

  /**
   * Records the outcome of the attempt owned by `claimToken`. Returns false when a resend took the
   * row over meanwhile; the outcome is then only appended to the history. Outcomes of concurrent
   * sends share one statement.
   */
  async complete(idempotencyKey: string, claimToken: string, outcome: LedgerOutcome): Promise<boolean> {
    const pending = { idempotencyKey, claimToken, outcome };
    try {
      return await this.outcomeBatches.load(pending);
    } catch (error) {
      if (!(error instanceof SharedStatementError)) throw error;
      const [owned] = await this.completeStatement([pending]);
      return owned as boolean;
    }
  }

  /**
   * A batch of outcomes, a statement per run of distinct keys (a row is updated once per
   * statement). When a shared statement fails, each of its outcomes is tried again alone by its
   * caller (`SharedStatementError`), so one outcome's problem stays its own.
   */
  private async completeMany(items: readonly PendingOutcome[]): Promise<(boolean | Error)[]> {
    const out: (boolean | Error)[] = new Array(items.length);
    for (const run of distinctKeyRuns(items)) {
      try {
        const owned = await this.completeStatement(run.map((i) => items[i] as PendingOutcome));
        run.forEach((i, k) => (out[i] = owned[k] as boolean));
      } catch (error) {
        const failure = run.length === 1 ? (error as Error) : new SharedStatementError(error as Error);
        for (const i of run) out[i] = failure;
      }
    }
    return out;
  }

  /**
   * One statement: each outcome lands on its row while the attempt still owns it (pending, same
   * token); otherwise it is only appended to the history as `late-<status>`. Answers whether each
   * was the row's.
   */
  private async completeStatement(items: readonly PendingOutcome[]): Promise<boolean[]> {
    const values = items.map(({ idempotencyKey, claimToken, outcome }, i) => ({
      i,
      key: idempotencyKey,
      token: claimToken,
      status: outcome.status,
      ses_message_id: outcome.status === 'sent' ? outcome.sesMessageId : null,
      error: outcome.status === 'failed' || outcome.status === 'unknown' ? outcome.error : null,
      retryable: outcome.status === 'failed' ? outcome.retryable : null,
      suppressed: outcome.status === 'suppressed' ? outcome.suppressed : null,
      // Only throttling is retried within an attempt, and SES certainly refused those calls: with
      // `sesNotCalled` no call of this attempt can have reached SES, so its stamp goes.
      ses_not_called: outcome.status === 'failed' && outcome.sesNotCalled === true,
    }));
    const owned = await queryRows<{ i: number }>(
      this.dataSource,
      `WITH v AS (
         SELECT * FROM jsonb_to_recordset($1::jsonb) AS v(
           i integer, key text, token uuid, status text, ses_message_id text, error text, retryable boolean,
           suppressed jsonb, ses_not_called boolean)
       ), owned AS (
         UPDATE mail_ledger l
            SET status = v.status, ses_message_id = v.ses_message_id, error = v.error, retryable = v.retryable,
                updated_at = now(), ses_called_at = CASE WHEN v.ses_not_called THEN NULL ELSE l.ses_called_at END,
                history = l.history || ${historyEvent(
                  `'event', v.status, 'attempt', l.attempts, 'sesMessageId', v.ses_message_id, 'error', v.error,
                   'suppressed', v.suppressed, 'sesCalled', CASE WHEN v.ses_not_called THEN false END`,
                )}
           FROM v
          WHERE l.idempotency_key = ANY($2::text[]) AND l.idempotency_key = v.key AND l.claim_token = v.token
            AND l.status = 'pending'
          RETURNING v.i
       ), late AS (
         UPDATE mail_ledger l
            SET updated_at = now(),
                history = l.history || ${historyEvent(
                  `'event', 'late-' || v.status, 'attempt', l.attempts, 'sesMessageId', v.ses_message_id, 'error', v.error`,
                )}
           FROM v
          WHERE l.idempotency_key = ANY($2::text[]) AND l.idempotency_key = v.key AND v.i NOT IN (SELECT i FROM owned)
          RETURNING v.i
       )
       SELECT i FROM owned`,
      // The keys as an array as well: the planner looks them up in the primary key (a join with the
      // recordset alone, of unknown size, scans the table).
      [JSON.stringify(values), items.map((item) => item.idempotencyKey)],
    );
    const mine = new Set(owned.map((row) => row.i));
    return items.map((_, i) => mine.has(i));
  }

  /**
   * Records SES's answer that arrived after the attempt's deadline (the call was recorded, or is
   * being recorded, as unknown): proof SES accepted the email. While the attempt still owns the row
   * (`pending` or `unknown`) the row settles `sent` with the MessageId and a `late-sent` event, so
   * it is never resent; after a resend took it over, only the history gets `late-sent` (the
   * `complete` late path). Returns whether the row settled.
   */
  async recordLateSent(idempotencyKey: string, claimToken: string, sesMessageId: string): Promise<boolean> {
    const settled = await queryRows<{ attempts: number }>(
      this.dataSource,
      `UPDATE mail_ledger
          SET status = 'sent', ses_message_id = $3, error = NULL, retryable = NULL, updated_at = now(),
              history = history || ${historyEvent(`'event', 'late-sent', 'attempt', attempts, 'sesMessageId', $3::text`)}
        WHERE idempotency_key = $1 AND claim_token = $2 AND status IN ('pending', 'unknown')
        RETURNING attempts`,
      [idempotencyKey, claimToken, sesMessageId],
    );
    if (settled.length > 0) return true;
    await this.complete(idempotencyKey, claimToken, { status: 'sent', sesMessageId });
    return false;
  }

  /**
   * Takes a `failed` or `unknown` row (stored, or pending past its window) for a new attempt,
   * recording who asked. An `unknown` row is taken only once its last SES call started longer ago
   * than the stale window, so the new attempt never overlaps a call that may still be open.
   * Returns undefined when the row is missing, in another state or too recent.
   */
  async reclaimForResend(
    idempotencyKey: string,
    actor: string,
    claimToken: string,
  ): Promise<LedgerRow | undefined> {
    const params: unknown[] = [idempotencyKey, actor, claimToken];
    const w = this.windows(params);
    const previous = `CASE WHEN ${stalePending(w)} THEN 'unknown' WHEN ${abandonedPending(w)} THEN 'failed' ELSE status END`;
    const rows = await queryRows<LedgerRow>(
      this.dataSource,
      `UPDATE mail_ledger
          SET status = 'pending', attempts = attempts + 1, claim_token = $3, attempt_started_at = now(),
              ses_called_at = NULL, updated_at = now(), error = NULL, retryable = NULL,
              last_resend_by = $2, last_resend_at = now(),
              history = history || ${historyEvent(
                `'event', 'resend', 'attempt', attempts + 1, 'actor', $2::text, 'previousStatus', ${previous}`,
              )}
        WHERE idempotency_key = $1
          AND (status = 'failed' OR ${settledUnknown(w)} OR ${stalePending(w)} OR ${abandonedPending(w)})
        RETURNING ${columns(w)}`,
      params,
    );
    return rows[0];
  }

  /** Records SES delivery feedback on the row SES knows by `sesMessageId`. */
  async recordDelivery(
    db: EntityManager,
    sesMessageId: string,
    deliveryStatus: MailDeliveryStatus,
    detail: string | undefined,
  ): Promise<void> {
    await db.query(
      `UPDATE mail_ledger
          SET delivery_status = $2, delivery_updated_at = now(), updated_at = now(),
              history = history || ${historyEvent(`'event', $2::text, 'attempt', attempts, 'error', $3::text`)}
        WHERE ses_message_id = $1`,
      [sesMessageId, deliveryStatus, detail ?? null],
    );
  }

  async countByStatus(): Promise<Record<MailLedgerStatus, number>> {
    const params: unknown[] = [];
    const w = this.windows(params);
    const rows = await queryRows<{ status: MailLedgerStatus; n: number }>(
      this.dataSource,
      `SELECT CASE WHEN ${stalePending(w)} THEN 'unknown' WHEN ${abandonedPending(w)} THEN 'failed' ELSE status END
                AS status,
              count(*)::int AS n
         FROM mail_ledger GROUP BY 1`,
      params,
    );
    const counts: Record<MailLedgerStatus, number> = {
      pending: 0,
      sent: 0,
      failed: 0,
      suppressed: 0,
      unknown: 0,
    };
    for (const row of rows) counts[row.status] += row.n;
    return counts;
  }

  async list(query: MailLedgerListQuery): Promise<MailLedgerPage> {
    const limit = Math.min(Math.max(Math.trunc(query.limit ?? 50), 1), 500);
    const params: unknown[] = [];
    const w = this.windows(params);
    const where: string[] = [];
    if (query.status === 'unknown') where.push(`(status = 'unknown' OR ${stalePending(w)})`);
    else if (query.status === 'failed') where.push(`(status = 'failed' OR ${abandonedPending(w)})`);
    else if (query.status === 'pending')
      where.push(`(status = 'pending' AND NOT ${stalePending(w)} AND NOT ${abandonedPending(w)})`);
    else if (query.status) {
      params.push(query.status);
      where.push(`status = $${params.length}`);
    }
    if (query.recipient) {
      // The key every lookup uses, and the plain lower-cased form rows written before it used.
      params.push([...new Set([addressKey(query.recipient), query.recipient.trim().toLowerCase()])]);
      where.push(`recipients && $${params.length}::text[]`);
    }
    if (query.cursor) {
      const cursor = decodeMailLedgerCursor(query.cursor);
      params.push(cursor.createdAt, cursor.idempotencyKey);
      where.push(`(created_at, idempotency_key) < ($${params.length - 1}::timestamptz, $${params.length})`);
    }
    params.push(limit + 1);
    const rows = await queryRows<LedgerRow>(
      this.dataSource,
      `SELECT ${columns(w)} FROM mail_ledger
        ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
        ORDER BY created_at DESC, idempotency_key DESC
        LIMIT $${params.length}`,
      params,
    );
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      items: page.map(toLedgerEntry),
      nextCursor:
        rows.length > limit && last
          ? encodeMailLedgerCursor({
              createdAt: last.created_at_cursor,
              idempotencyKey: last.idempotency_key,
            })
          : undefined,
    };
  }
}

/** Longest cursor a page hands out: a timestamp and a key of at most a few hundred characters, JSON-escaped. */
const MAX_CURSOR_LENGTH = 4096;
const UTF8 = new TextDecoder('utf-8', { fatal: true });
/** `timestamptz::text` in the ISO DateStyle Postgres sessions use: `2026-11-22 07:00:00.123456+00`. */
const CREATED_AT =
  /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.\d{1,6})?[+-](\d{2})(?::[0-5]\d){0,2}$/;
// eslint-disable-next-line no-control-regex -- NUL cannot be stored; a lone surrogate cannot be read back
const NOT_IN_KEYS = /\u0000|\p{Cs}/u;

/** A statement shared by several outcomes failed: each is tried again alone. */
class SharedStatementError extends Error {
  constructor(override readonly cause: Error) {
    super(`a shared ledger statement failed: ${cause.message}`);
  }
}

/**
 * Indices of `items` in runs of distinct keys, in order: a key met again starts the next run, so
 * its later outcome lands after the earlier one.
 */
function distinctKeyRuns(items: readonly PendingOutcome[]): number[][] {
  const runs: number[][] = [];
  let run: number[] = [];
  let keys = new Set<string>();
  items.forEach((item, i) => {
    if (keys.has(item.idempotencyKey)) {
      runs.push(run);
      run = [];
      keys = new Set();
    }
    keys.add(item.idempotencyKey);
    run.push(i);
  });
  if (run.length > 0) runs.push(run);
  return runs;
}

/** `MailLedgerService.list` got a `cursor` no page handed out: a caller error (an HTTP API answers 400). */
export class InvalidMailLedgerCursorError extends Error {
  constructor(readonly reason: string) {
    super(`Invalid mail ledger cursor: ${reason}`);
    this.name = 'InvalidMailLedgerCursorError';
  }
}

/** The position after a ledger row in `created_at DESC, idempotency_key DESC` order. */
export interface MailLedgerCursor {
  /** `created_at::text` of the row, exact to the microsecond. */
  createdAt: string;
  idempotencyKey: string;
}

/** The `nextCursor` of a page: base64url of the JSON array `[createdAt, idempotencyKey]`. */
export function encodeMailLedgerCursor(cursor: MailLedgerCursor): string {
  return Buffer.from(JSON.stringify([cursor.createdAt, cursor.idempotencyKey])).toString('base64url');
}

/**
 * The position a {@link encodeMailLedgerCursor} cursor stands for.
 * @throws InvalidMailLedgerCursorError unless `cursor` is exactly what the encoder makes of a row:
 * canonical base64url of canonical JSON, a real calendar timestamp, a key Postgres can hold.
 */
export function decodeMailLedgerCursor(cursor: string): MailLedgerCursor {
  const refuse = (reason: string): never => {
    throw new InvalidMailLedgerCursorError(reason);
  };
  if (cursor.length === 0 || cursor.length > MAX_CURSOR_LENGTH) refuse('not a cursor of the mail ledger');
  const bytes = Buffer.from(cursor, 'base64url');
  if (bytes.toString('base64url') !== cursor) refuse('not base64url');
  let value: unknown;
  let text = '';
  try {
    text = UTF8.decode(bytes);
    value = JSON.parse(text);
  } catch {
    refuse('not a cursor of the mail ledger');
  }
  if (!Array.isArray(value) || value.length !== 2 || JSON.stringify(value) !== text)
    return refuse('not a cursor of the mail ledger');
  const [createdAt, idempotencyKey] = value as unknown[];
  if (typeof createdAt !== 'string' || !isTimestamp(createdAt)) return refuse('not a ledger timestamp');
  if (typeof idempotencyKey !== 'string' || idempotencyKey.length === 0 || NOT_IN_KEYS.test(idempotencyKey))
    return refuse('not a ledger key');
  return { createdAt, idempotencyKey };
}

function isTimestamp(text: string): boolean {
  const match = CREATED_AT.exec(text);
  if (!match) return false;
  const [year, month, day, hour, minute, second, offsetHours] = match.slice(1, 8).map(Number);
  const date = new Date(Date.UTC(year, month - 1, day));
  return (
    date.getUTCFullYear() === year &&
    date.getUTCMonth() === month - 1 &&
    date.getUTCDate() === day &&
    hour < 24 &&
    minute < 60 &&
    second < 60 &&
    offsetHours <= 15
  );
}

/** The public view of a row. */
export function toLedgerEntry(row: LedgerRow): MailLedgerEntry {
  return {
    idempotencyKey: row.idempotency_key,
    status: row.effective_status,
    recipients: row.recipients,
    from: row.sender,
    subject: row.subject,
    sesMessageId: row.ses_message_id ?? undefined,
    error: row.error ?? undefined,
    retryable: row.retryable ?? undefined,
    attempts: row.attempts,
    deliveryStatus: row.delivery_status ?? undefined,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    attemptStartedAt: row.attempt_started_at,
    sesCalledAt: row.ses_called_at ?? undefined,
    lastResendBy: row.last_resend_by ?? undefined,
    lastResendAt: row.last_resend_at ?? undefined,
    history: row.history,
  };
}
