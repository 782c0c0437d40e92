import type {
  Claim,
  ClaimOptions,
  ClaimOutcome,
  IdempotencyContext,
  IdempotencyRecord,
  ListPage,
  ListQuery,
  PayloadMismatchPolicy,
  RunOptions,
} from '../dedup.types';

/** Per-call options with the module defaults applied. */
export interface ResolvedRunOptions {
  readonly scope: string;
  readonly ttlMs: number;
  readonly leaseMs: number;
  readonly transactional: boolean;
  readonly storeResult: boolean;
  readonly onPayloadMismatch: PayloadMismatchPolicy;
  /** The caller counts `duplicate-*` itself, with their cause (the SQS runner). */
  readonly callerCountsDuplicates?: boolean;
}

/** One unit of idempotent work (a key and what to hand the worker for it). */
export interface ExecUnit<P> {
  readonly key: string;
  readonly messageId?: string;
  /** See `payloadFingerprint`. */
  readonly payloadHash?: string;
  readonly payload: P;
}

/** What the worker says about the fresh units it was given, index for index. */
export interface WorkResult {
  readonly acked: readonly boolean[];
  readonly results?: readonly unknown[];
}

/** The worker of {@link IdempotencyEngine.execute}: gets the fresh units' payloads. */
export type Work<P> = (fresh: P[], context: IdempotencyContext) => Promise<WorkResult>;

/** How one unit ended. `not-acked`: ran, but the handler did not acknowledge it, so it was released. */
export type ExecOutcome =
  | { readonly status: 'executed' | 'not-acked' | 'stale' }
  | { readonly status: 'completed'; readonly result: unknown; readonly payloadMismatch?: boolean }
  | { readonly status: 'in-flight'; readonly retryAfterMs: number; readonly payloadMismatch?: boolean };

export interface ExecHooks<P> {
  /** Runs on every heartbeat with the fresh payloads (the SQS runner extends their visibility). */
  onHeartbeat?: (fresh: readonly P[]) => Promise<void>;
}

/** An item of {@link ClaimLifecycle.claimMany}. */
export interface ClaimItem {
  readonly key: string;
  readonly messageId?: string;
  readonly payload?: unknown;
  readonly payloadHash?: string;
}

/** The building blocks of a run: claim, then complete or release, extending meanwhile. */
export interface ClaimLifecycle {
  /** A key repeated in `items` is claimed once; its repeats are reported `in-flight`. */
  claimMany(
    items: readonly ClaimItem[],
    options?: Omit<ClaimOptions, 'messageId' | 'payload'>,
  ): Promise<ClaimOutcome[]>;
  /** `false` marks a stale claim. */
  completeMany(entries: readonly { claim: Claim; result?: unknown }[]): Promise<boolean[]>;
  releaseMany(claims: readonly Claim[]): Promise<boolean[]>;
  /** `false` means the claim was lost. */
  extendMany(claims: readonly Claim[]): Promise<boolean[]>;
}

/**
 * Exactly-once execution over a store: the whole lifecycle (claim → work under a lease heartbeat
 * or in one transaction → complete or release) and the record reads around it.
 */
export interface IdempotencyEngine extends ClaimLifecycle {
  /** Applies module defaults to per-call options. */
  resolve(options: RunOptions): ResolvedRunOptions;
  /** See `IdempotencyService.run`. */
  run<T>(key: string, fn: (context: IdempotencyContext) => T | Promise<T>, options?: RunOptions): Promise<T>;
  /**
   * Claims every unit in one round trip, hands the fresh ones to `work`, then completes what `work`
   * acknowledged and releases the rest. If `work` throws, every fresh claim is released (rolled
   * back) and the error rethrown. Unit keys must be distinct.
   */
  execute<P>(
    units: readonly ExecUnit<P>[],
    opts: ResolvedRunOptions,
    work: Work<P>,
    hooks?: ExecHooks<P>,
  ): Promise<ExecOutcome[]>;
  keyFor(key: string, scope?: string): string;
  get(key: string, options?: { scope?: string }): Promise<IdempotencyRecord | null>;
  forget(key: string, options?: { scope?: string; force?: boolean }): Promise<boolean>;
  list(query?: ListQuery): Promise<ListPage>;
  purgeExpired(limit?: number): Promise<number>;
}
