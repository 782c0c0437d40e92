import type { Logger } from '@nestjs/common';
import type { DataSource, EntityManager, QueryRunner } from 'typeorm';
import { DEDUP_FENCE_SEQUENCE as SEQ, DEDUP_TABLE as TABLE } from '../dedup.constants';
import { StoreConflictError, StoreUnavailableError } from '../dedup.errors';
import { decodeKeyCursor, encodeKeyCursor } from '../list-cursor';
import type { DedupMetrics } from '../dedup-metrics.service';
import type { RecordState } from '../dedup.types';
import type {
  ClaimRequest,
  ClaimTransaction,
  CompleteItem,
  HeldKey,
  StoreClaimResult,
  StoredRecord,
  StoreListPage,
  StoreListQuery,
  ForgetOptions,
  ForgetOutcome,
  TransactionalStore,
} from './dedup-store.interface';
import { withRetry, type RetryPolicy } from './store.retry';

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
]);

/** Connection-level failures (not SQL errors): network codes, SQLSTATE class 08, shutdown, too many connections. */
export function isPostgresDownError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error.name === 'CannotExecuteNotConnectedError' || error.name === 'ConnectionIsNotSetError')
    return true;
  const driver = (error as { driverError?: unknown }).driverError;
  const code = String(
    (error as { code?: unknown }).code ?? (driver as { code?: unknown } | undefined)?.code ?? '',
  );
  if (
    NETWORK_CODES.has(code) ||
    code.startsWith('08') ||
    ['57P01', '57P02', '57P03', '53300'].includes(code)
  ) {
    return true;
  }
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(
    error.message,
  );
}

const sqlStateOf = (error: unknown): string => {
  const driver = (error as { driverError?: { code?: unknown } } | undefined)?.driverError;
  return String((error as { code?: unknown } | undefined)?.code ?? driver?.code ?? '');
};

/** Deadlock victim (40P01) or serialization failure (40001): the statement was rolled back, retry it. */
export function isConflictError(error: unknown): boolean {
  const code = sqlStateOf(error);
  return code === '40P01' || code === '40001';
}

/** True for Postgres' `lock_not_available` (lock_timeout expired). */
export function isLockTimeoutError(error: unknown): boolean {
  const driver = (error as { driverError?: { code?: unknown } } | undefined)?.driverError;
  return (error as { code?: unknown } | undefined)?.code === '55P03' || driver?.code === '55P03';
}

// Deadlock detection alone takes deadlock_timeout (1 s by default) per victim: a few attempts.
const RETRY: RetryPolicy = { attempts: 4, baseDelayMs: 50, maxDelayMs: 1000 };

/** Which failures a statement is retried on: `conflict` for any, `transient` also after connection errors. */
type Retry = 'none' | 'conflict' | 'transient';

const isTransient = (error: unknown) => isConflictError(error) || isPostgresDownError(error);

const MS = `$X::float8 * interval '1 millisecond'`;
const ms = (param: number) => MS.replace('$X', `$${param}`);
const NOW = 'statement_timestamp()';

/**
 * CTEs `v` (key, token from $1, $2) and `locked`: the IN_PROGRESS rows those tokens hold, locked in
 * key order (so overlapping batches wait for each other instead of deadlocking).
 */
const LOCK_HELD_BY_TOKEN = `WITH v AS (SELECT * FROM unnest($1::text[], $2::text[]) AS v(key, token)),
  locked AS MATERIALIZED (
    SELECT r.key FROM ${TABLE} r JOIN v ON r.key = v.key
    WHERE r.token = v.token AND r.state = 'IN_PROGRESS'
    ORDER BY r.key
    FOR UPDATE OF r
  )`;

const COLUMNS = `key, scope, idem_key, state, fence, message_id, attempts, result::text AS result,
  payload_hash, lease_until, expires_at, created_at, updated_at`;

interface RecordRow {
  key: string;
  scope: string;
  idem_key: string;
  state: RecordState;
  fence: string;
  message_id: string | null;
  attempts: number;
  result: string | null;
  payload_hash: string | null;
  lease_until: Date | null;
  expires_at: Date;
  created_at: Date;
  updated_at: Date;
}

interface ClaimRow {
  key: string;
  claimed_fence: string | null;
  state: RecordState | null;
  result: string | null;
  payload_hash: string | null;
  expires_in_ms: string | null;
  lease_left_ms: string | null;
}

const toRecord = (row: RecordRow): StoredRecord => ({
  storageKey: row.key,
  scope: row.scope,
  key: row.idem_key,
  state: row.state,
  fence: Number(row.fence),
  messageId: row.message_id,
  attempts: row.attempts,
  result: row.result ?? undefined,
  payloadHash: row.payload_hash,
  leaseUntil: row.lease_until,
  expiresAt: row.expires_at,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
});

/** What an existing (unclaimed) row means for a claimer. */
function existingOutcome(
  row: Pick<ClaimRow, 'state' | 'result' | 'payload_hash' | 'expires_in_ms' | 'lease_left_ms'>,
): StoreClaimResult {
  const payloadHash = row.payload_hash ?? undefined;
  if (row.state === 'COMPLETED') {
    return {
      status: 'completed',
      result: row.result ?? undefined,
      expiresInMs: Number(row.expires_in_ms ?? 0),
      payloadHash,
    };
  }
  // IN_PROGRESS, or a row committed after this statement's snapshot: somebody is on it.
  return {
    status: 'in-flight',
    retryAfterMs: row.state ? Number(row.lease_left_ms ?? 0) : 1000,
    payloadHash,
  };
}

const NO_ROW = { state: null, result: null, payload_hash: null, expires_in_ms: null, lease_left_ms: null };

const payloadHashes = (requests: readonly ClaimRequest[]) => requests.map((r) => r.payloadHash ?? '');

const requestArrays = (requests: readonly ClaimRequest[]) => [
  requests.map((r) => r.storageKey),
  requests.map((r) => r.scope),
  requests.map((r) => r.key),
  requests.map((r) => r.messageId ?? ''),
];

/**
 * Records in the `dedup_records` table (see the migration). Every multi-key operation is one
 * statement over `unnest(...)` arrays. Times come from Postgres' clock.
 *
 * Every statement that locks several rows locks them in key order (`ORDER BY key` feeding the
 * INSERT, or a `SELECT … ORDER BY key FOR UPDATE` before an UPDATE/DELETE), so overlapping batches
 * wait for each other instead of deadlocking. A statement still chosen as a deadlock victim or
 * failing serialization (say, against a foreign transaction) is retried; complete, release and
 * extend are also retried after connection failures (each is idempotent for its token).
 */
export class PostgresStore implements TransactionalStore {
  constructor(
    private readonly dataSource: DataSource,
    private readonly metrics: DedupMetrics,
    private readonly transactions: PostgresTransactionOptions = { lockTimeoutMs: 5000 },
  ) {}

  async claim(
    requests: readonly ClaimRequest[],
    token: string,
    leaseMs: number,
  ): Promise<StoreClaimResult[]> {
    if (requests.length === 0) return [];
    const rows = await this.query<ClaimRow>(
      `WITH input AS MATERIALIZED (
         SELECT k.key COLLATE "C" AS key, k.scope, k.idem_key, NULLIF(k.message_id, '') AS message_id,
                NULLIF(k.payload_hash, '') AS payload_hash, nextval('${SEQ}') AS fence
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $7::text[])
           AS k(key, scope, idem_key, message_id, payload_hash)
       ), claimed AS (
         INSERT INTO ${TABLE} AS r (key, scope, idem_key, state, token, fence, message_id, payload_hash, attempts,
                                    lease_until, expires_at, created_at, updated_at)
         SELECT key, scope, idem_key, 'IN_PROGRESS', $5, fence, message_id, payload_hash, 1,
                ${NOW} + ${ms(6)}, ${NOW} + ${ms(6)}, ${NOW}, ${NOW}
         FROM input
         ORDER BY key
         ON CONFLICT (key) DO UPDATE SET
           scope = EXCLUDED.scope, idem_key = EXCLUDED.idem_key, state = 'IN_PROGRESS', token = EXCLUDED.token,
           fence = EXCLUDED.fence, message_id = EXCLUDED.message_id, result = NULL,
           payload_hash = EXCLUDED.payload_hash,
           attempts = CASE WHEN r.state = 'COMPLETED' THEN 1 ELSE r.attempts + 1 END,
           created_at = CASE WHEN r.state = 'COMPLETED' THEN EXCLUDED.created_at ELSE r.created_at END,
           lease_until = EXCLUDED.lease_until, expires_at = EXCLUDED.expires_at, updated_at = EXCLUDED.updated_at
         WHERE r.expires_at <= ${NOW}
         RETURNING r.key, r.fence
       )
       SELECT i.key, c.fence AS claimed_fence, e.state, e.result::text AS result, e.payload_hash,
              GREATEST(0, EXTRACT(EPOCH FROM (e.expires_at - ${NOW})) * 1000)::bigint AS expires_in_ms,
              GREATEST(0, EXTRACT(EPOCH FROM (e.lease_until - ${NOW})) * 1000)::bigint AS lease_left_ms
       FROM input i
       LEFT JOIN claimed c ON c.key = i.key
       LEFT JOIN ${TABLE} e ON c.key IS NULL AND e.key = i.key`,
      [...requestArrays(requests), token, leaseMs, payloadHashes(requests)],
      undefined,
      'conflict',
    );
    const byKey = new Map(rows.map((row) => [row.key, row]));
    return requests.map((request): StoreClaimResult => {
      const row = byKey.get(request.storageKey);
      if (row?.claimed_fence) return { status: 'claimed', fence: Number(row.claimed_fence) };
      return existingOutcome(row ?? NO_ROW);
    });
  }

  async complete(items: readonly CompleteItem[], ttlMs: number): Promise<boolean[]> {
    if (items.length === 0) return [];
    const rows = await this.query<{ key: string }>(
      `WITH v AS (
         SELECT v.key COLLATE "C" AS key, v.scope, v.idem_key, v.message_id, v.token, v.result, v.payload_hash
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $8::text[])
           AS v(key, scope, idem_key, message_id, token, result, payload_hash)
       ), done AS (
         INSERT INTO ${TABLE} AS r (key, scope, idem_key, state, token, fence, message_id, result, payload_hash,
                                    attempts, lease_until, expires_at, created_at, updated_at)
         SELECT key, scope, idem_key, 'COMPLETED', token, nextval('${SEQ}'), NULLIF(message_id, ''), result::jsonb,
                NULLIF(payload_hash, ''), 1, NULL, ${NOW} + ${ms(7)}, ${NOW}, ${NOW}
         FROM v
         ORDER BY key
         ON CONFLICT (key) DO UPDATE SET
           state = 'COMPLETED', result = EXCLUDED.result, lease_until = NULL, expires_at = EXCLUDED.expires_at,
           updated_at = EXCLUDED.updated_at,
           payload_hash = CASE WHEN r.token = EXCLUDED.token THEN r.payload_hash ELSE EXCLUDED.payload_hash END,
           fence = CASE WHEN r.token = EXCLUDED.token THEN r.fence ELSE EXCLUDED.fence END,
           token = EXCLUDED.token
         WHERE r.token = EXCLUDED.token OR r.expires_at <= ${NOW}
         RETURNING r.key
       )
       SELECT key FROM done`,
      [
        ...requestArrays(items),
        items.map((i) => i.token),
        items.map((i) => i.result ?? null),
        ttlMs,
        payloadHashes(items),
      ],
      undefined,
      'transient',
    );
    const done = new Set(rows.map((row) => row.key));
    return items.map((item) => done.has(item.storageKey));
  }

  async release(items: readonly HeldKey[]): Promise<boolean[]> {
    if (items.length === 0) return [];
    // A retry after a lost reply counts an absent key as released: it is free either way.
    const rows = await this.retried(
      'transient',
      (attempt) =>
        this.dataSource.query(
          `${LOCK_HELD_BY_TOKEN},
         gone AS (
           DELETE FROM ${TABLE} r USING locked l WHERE r.key = l.key RETURNING r.key
         )
         SELECT key FROM gone
         UNION ALL
         SELECT v.key FROM v
         WHERE $3::boolean AND NOT EXISTS (SELECT 1 FROM ${TABLE} e WHERE e.key = v.key)`,
          [items.map((i) => i.storageKey), items.map((i) => i.token), attempt > 1],
        ) as Promise<{ key: string }[]>,
    );
    const gone = new Set(rows.map((row) => row.key));
    return items.map((item) => gone.has(item.storageKey));
  }

  async extend(items: readonly HeldKey[], leaseMs: number): Promise<boolean[]> {
    if (items.length === 0) return [];
    const rows = await this.query<{ key: string }>(
      `${LOCK_HELD_BY_TOKEN},
       renewed AS (
         UPDATE ${TABLE} r SET lease_until = ${NOW} + ${ms(3)}, expires_at = ${NOW} + ${ms(3)}, updated_at = ${NOW}
         FROM locked l
         WHERE r.key = l.key
         RETURNING r.key
       )
       SELECT key FROM renewed`,
      [items.map((i) => i.storageKey), items.map((i) => i.token), leaseMs],
      undefined,
      'transient',
    );
    const renewed = new Set(rows.map((row) => row.key));
    return items.map((item) => renewed.has(item.storageKey));
  }

  async get(storageKey: string): Promise<StoredRecord | null> {
    return (await this.getMany([storageKey])).get(storageKey) ?? null;
  }

  /** The live records of `storageKeys`, by key, in one statement. */
  async getMany(storageKeys: readonly string[]): Promise<Map<string, StoredRecord>> {
    if (storageKeys.length === 0) return new Map();
    const rows = await this.query<RecordRow>(
      `SELECT ${COLUMNS} FROM ${TABLE} WHERE key = ANY($1::text[]) AND expires_at > ${NOW}`,
      [storageKeys],
    );
    return new Map(rows.map((row) => [row.key, toRecord(row)]));
  }

  /**
   * One statement: deletes the row unless (without force) it is a live IN_PROGRESS claim. A row
   * that was there but not deleted (live IN_PROGRESS, or changed under the statement) is reported
   * as 'in-progress', the answer that never claims more than happened. An expired row is deleted
   * and reported 'absent'.
   */
  async forget(storageKey: string, options: ForgetOptions = {}): Promise<ForgetOutcome> {
    const rows = await this.query<{ gone: boolean; was_live: boolean | null; seen: boolean }>(
      `WITH gone AS (
         DELETE FROM ${TABLE}
         WHERE key = $1
           AND ($2::boolean OR state <> 'IN_PROGRESS' OR lease_until IS NULL OR lease_until <= ${NOW}
                OR expires_at <= ${NOW})
         RETURNING expires_at > ${NOW} AS was_live
       )
       SELECT EXISTS (SELECT 1 FROM gone) AS gone, (SELECT was_live FROM gone) AS was_live,
              EXISTS (SELECT 1 FROM ${TABLE} WHERE key = $1) AS seen`,
      [storageKey, options.force ?? true],
    );
    const row = rows[0];
    if (row?.gone) return row.was_live ? 'forgotten' : 'absent';
    return row?.seen ? 'in-progress' : 'absent';
  }

  /** Keyset pagination in key order (the key column uses the "C" collation, so prefix LIKE uses the index). */
  async list(query: StoreListQuery): Promise<StoreListPage> {
    const after = query.cursor === undefined ? null : decodeKeyCursor(query.cursor);
    const pattern = `${query.prefix.replace(/[\\%_]/g, (char) => `\\${char}`)}%`;
    const rows = await this.query<RecordRow>(
      `SELECT ${COLUMNS} FROM ${TABLE}
       WHERE key LIKE $1 AND expires_at > ${NOW}
         AND ($2::text IS NULL OR state = $2::text)
         AND ($3::text IS NULL OR key > $3::text)
       ORDER BY key
       LIMIT $4`,
      [pattern, query.state ?? null, after, query.limit + 1],
    );
    const items = rows.slice(0, query.limit).map(toRecord);
    const last = items[items.length - 1];
    return {
      items,
      nextCursor: rows.length > query.limit && last ? encodeKeyCursor(last.storageKey) : undefined,
    };
  }

  /** Deletes up to `limit` expired records; returns how many. */
  async purgeExpired(limit: number): Promise<number> {
    const rows = await this.query<{ n: number }>(
      `WITH doomed AS (
         SELECT key FROM ${TABLE} WHERE expires_at <= ${NOW} ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED
       ), gone AS (
         DELETE FROM ${TABLE} r USING doomed d WHERE r.key = d.key RETURNING 1
       )
       SELECT count(*)::int AS n FROM gone`,
      [limit],
    );
    return rows[0]?.n ?? 0;
  }

  /**
   * Transactional mode: opens a transaction (with `lock_timeout`) and claims `requests` in it
   * ({@link claimInTransaction}); a key locked past the lock timeout is reported in flight.
   */
  async begin(
    requests: readonly ClaimRequest[],
    token: string,
    _leaseMs: number,
    ttlMs: number,
  ): Promise<ClaimTransaction> {
    const runner = this.dataSource.createQueryRunner();
    const { lockTimeoutMs } = this.transactions;
    try {
      await runner.connect();
      await runner.startTransaction();
      await runner.query(`SET LOCAL lock_timeout = ${Math.floor(lockTimeoutMs)}`);
      let results: StoreClaimResult[];
      try {
        results = await this.claimInTransaction(runner.manager, requests, token, ttlMs);
      } catch (error) {
        if (!isLockTimeoutError(error)) throw error;
        results = requests.map(() => ({ status: 'in-flight', retryAfterMs: lockTimeoutMs }));
      }
      return new PostgresTransaction(this, runner, token, results, this.transactions.logger);
    } catch (error) {
      await new PostgresTransaction(this, runner, token, [], this.transactions.logger).abandon();
      await runner.release();
      throw error;
    }
  }

  isRetryable(error: unknown): boolean {
    return error instanceof StoreConflictError || isConflictError(error);
  }

  /**
   * Transactional mode, inside the caller's transaction: `INSERT … ON CONFLICT DO NOTHING` of
   * COMPLETED rows; rows that conflicted are then taken over only if expired, else reported as
   * they stand. Both statements run on `manager`, so the rows commit or roll back with the
   * business writes. A concurrent first delivery makes this wait (lock_timeout bounds it).
   */
  async claimInTransaction(
    manager: EntityManager,
    requests: readonly ClaimRequest[],
    token: string,
    ttlMs: number,
  ): Promise<StoreClaimResult[]> {
    const inserted = await this.query<{ key: string; fence: string }>(
      `INSERT INTO ${TABLE} (key, scope, idem_key, state, token, fence, message_id, payload_hash, attempts,
                             lease_until, expires_at, created_at, updated_at)
       SELECT k.key, k.scope, k.idem_key, 'COMPLETED', $5, nextval('${SEQ}'), NULLIF(k.message_id, ''),
              NULLIF(k.payload_hash, ''), 1, NULL, ${NOW} + ${ms(6)}, ${NOW}, ${NOW}
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $7::text[])
         AS k(key, scope, idem_key, message_id, payload_hash)
       ORDER BY k.key COLLATE "C"
       ON CONFLICT DO NOTHING
       RETURNING key, fence`,
      [...requestArrays(requests), token, ttlMs, payloadHashes(requests)],
      manager,
    );
    const fences = new Map(inserted.map((row) => [row.key, Number(row.fence)]));
    const conflicted = requests.filter((request) => !fences.has(request.storageKey));
    const existing = new Map<string, ClaimRow>();
    if (conflicted.length > 0) {
      const rows = await this.query<ClaimRow>(
        `WITH expired AS MATERIALIZED (
           SELECT key FROM ${TABLE} WHERE key = ANY($1::text[]) AND expires_at <= ${NOW}
           ORDER BY key
           FOR UPDATE
         ), taken AS (
           UPDATE ${TABLE} r SET state = 'COMPLETED', token = $2, fence = nextval('${SEQ}'), result = NULL,
             attempts = 1, lease_until = NULL, expires_at = ${NOW} + ${ms(3)}, created_at = ${NOW}, updated_at = ${NOW},
             payload_hash = NULLIF(h.payload_hash, '')
           FROM expired x JOIN unnest($1::text[], $4::text[]) AS h(key, payload_hash) ON h.key = x.key
           WHERE r.key = x.key
           RETURNING r.key, r.fence
         )
         SELECT e.key, t.fence AS claimed_fence, e.state, e.result::text AS result, e.payload_hash,
                GREATEST(0, EXTRACT(EPOCH FROM (e.expires_at - ${NOW})) * 1000)::bigint AS expires_in_ms,
                GREATEST(0, EXTRACT(EPOCH FROM (e.lease_until - ${NOW})) * 1000)::bigint AS lease_left_ms
         FROM ${TABLE} e LEFT JOIN taken t ON t.key = e.key
         WHERE e.key = ANY($1::text[])`,
        [conflicted.map((r) => r.storageKey), token, ttlMs, payloadHashes(conflicted)],
        manager,
      );
      for (const row of rows) existing.set(row.key, row);
    }
    return requests.map((request): StoreClaimResult => {
      const fence = fences.get(request.storageKey);
      if (fence !== undefined) return { status: 'claimed', fence };
      const row = existing.get(request.storageKey);
      if (row?.claimed_fence) return { status: 'claimed', fence: Number(row.claimed_fence) };
      return existingOutcome(row ?? NO_ROW);
    });
  }

  /** Transactional mode: stores results and drops the rows of messages the handler did not acknowledge. */
  async finishInTransaction(
    manager: EntityManager,
    token: string,
    results: readonly { storageKey: string; result?: string }[],
    discarded: readonly string[],
  ): Promise<void> {
    const withResult = results.filter((r) => r.result !== undefined);
    if (withResult.length > 0) {
      await this.query(
        `UPDATE ${TABLE} r SET result = v.result::jsonb
         FROM unnest($1::text[], $2::text[]) AS v(key, result)
         WHERE r.key = v.key AND r.token = $3`,
        [withResult.map((r) => r.storageKey), withResult.map((r) => r.result ?? null), token],
        manager,
      );
    }
    if (discarded.length > 0) {
      await this.query(
        `DELETE FROM ${TABLE} WHERE key = ANY($1::text[]) AND token = $2`,
        [discarded, token],
        manager,
      );
    }
  }

  /**
   * Runs one statement. On the DataSource (autocommit) it is retried per `retry`; on a caller's
   * `manager` never (the transaction is aborted): a conflict there becomes StoreConflictError.
   */
  private query<T>(
    sql: string,
    params: unknown[],
    manager?: EntityManager,
    retry: Retry = 'none',
  ): Promise<T[]> {
    if (manager) return this.translated(() => manager.query(sql, params) as Promise<T[]>);
    return this.retried(retry, () => this.dataSource.query(sql, params) as Promise<T[]>);
  }

  private retried<T>(retry: Retry, run: (attempt: number) => Promise<T>): Promise<T> {
    if (retry === 'none') return this.translated(() => run(1));
    return this.translated(() => withRetry(RETRY, retry === 'conflict' ? isConflictError : isTransient, run));
  }

  private async translated<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      if (isConflictError(error)) {
        this.metrics.increment('store-down', { store: 'postgres' });
        throw new StoreConflictError(sqlStateOf(error), (error as Error).message, { cause: error });
      }
      if (!isPostgresDownError(error)) throw error;
      this.metrics.increment('store-down', { store: 'postgres' });
      throw new StoreUnavailableError('postgres', (error as Error).message, { cause: error });
    }
  }
}

/** Transactional mode settings of a {@link PostgresStore}. */
export interface PostgresTransactionOptions {
  /** How long a claim waits for another transaction's lock on the key before it counts as in flight. */
  readonly lockTimeoutMs: number;
  /** Where a failed rollback is reported. */
  readonly logger?: Logger;
}

/** A transaction {@link PostgresStore.begin} opened: the row locks are the lease. */
class PostgresTransaction implements ClaimTransaction {
  constructor(
    private readonly store: PostgresStore,
    private readonly runner: QueryRunner,
    private readonly token: string,
    readonly results: readonly StoreClaimResult[],
    private readonly logger?: Logger,
  ) {}

  get manager(): EntityManager {
    return this.runner.manager;
  }

  async renew(): Promise<undefined> {
    return undefined;
  }

  async commit(items: readonly CompleteItem[]): Promise<void> {
    await this.store.finishInTransaction(this.runner.manager, this.token, items, []);
    await this.runner.commitTransaction();
  }

  /** Postgres alone: no cache layer follows. */
  async afterCommit(): Promise<void> {
    return undefined;
  }

  async rollback(): Promise<void> {
    await this.runner.rollbackTransaction();
  }

  async abandon(): Promise<void> {
    if (!this.runner.isTransactionActive) return;
    await this.runner
      .rollbackTransaction()
      .catch((error: Error) => this.logger?.error({ msg: 'rollback failed', error: error.message }));
  }

  close(): Promise<void> {
    return this.runner.release();
  }
}
