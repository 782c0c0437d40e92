import type { DedupStoreMode } from '../../src';

/**
 * The reference model of one key's lifecycle, as far as the test harness can know it from the
 * outside: who holds the key and until when for certain / at most, whether it is completed
 * (for certain or maybe, after an operation with an unknown outcome), and until when unknown
 * operations (a command that timed out but may still land, a reply that was lost) may change it.
 *
 * Safety properties are always asserted; "this must succeed" properties only when no unknown
 * operation can interfere and the call is far (MARGIN_MS) from every lease boundary.
 */

/** Timing slack around lease boundaries: closer than this, either outcome is accepted. */
export const MARGIN_MS = 100;

/**
 * How long after it returned an operation with an unknown outcome may still land: ioredis resends
 * unanswered commands after reconnecting and sends queued ones late; node-postgres never resends.
 */
export const PHANTOM_MS = 1000;
export const PG_PHANTOM_MS = 150;

export interface Holder {
  readonly owner: number;
  readonly token: string;
  /** The lease is live for certain before this (the grant executed at or after the request started). */
  certainUntil: number;
  /** The lease is over for certain after this (the grant executed at the latest when the answer came). */
  mayUntil: number;
  /** `maybe-released`: a release (or forget) of it has an unknown outcome. */
  state: 'held' | 'maybe-released';
}

export interface KeyModel {
  holder?: Holder;
  completed: 'no' | 'maybe' | 'yes';
  /** Tokens that completed the key (for certain when `yes`, possibly when `maybe`). */
  completers: Set<string>;
  /** Results a duplicate may be handed. */
  results: Set<string>;
  /** Before this, unknown operations may still change the key: no "must succeed" assertions. */
  blockedUntil: number;
  /** Before this, a forget with an unknown outcome may still delete whatever holds the key. */
  forgetPhantomUntil: number;
  lastFence: number;
}

/** When a call started and ended, and whether a fault fired during it. */
export interface CallWindow {
  readonly reqAt: number;
  readonly respAt: number;
  readonly faulted: boolean;
  /** How long after the answer a command of this call may still land (see PHANTOM_MS); default PHANTOM_MS. */
  readonly phantomMs?: number;
}

export class LifecycleViolation extends Error {
  override readonly name = 'LifecycleViolation';
}

export type ForgetAnswer = 'forgotten' | 'absent' | 'in-progress' | boolean;

/** How often each observation was checked, across runs (an observation under an unknown outcome counts as `…:unsettled`). */
export type CheckCounts = Record<string, number>;

export class LifecycleModel {
  readonly keys: KeyModel[];

  constructor(
    readonly store: DedupStoreMode,
    keyCount: number,
    readonly leaseMs: number,
    /** The service refuses to forget a live IN_PROGRESS record without `force`. */
    readonly forgetRefusesLive: boolean,
    readonly counts: CheckCounts = {},
  ) {
    this.keys = Array.from({ length: keyCount }, () => ({
      completed: 'no',
      completers: new Set<string>(),
      results: new Set<string>(),
      blockedUntil: 0,
      forgetPhantomUntil: 0,
      lastFence: 0,
    }));
  }

  /** Redis alone is the record: losing a Redis key loses the record (as good as Redis persistence). */
  get redisIsTheRecord(): boolean {
    return this.store === 'redis';
  }

  private fail(key: number, what: string): never {
    throw new LifecycleViolation(`k${key}: ${what}\n  model: ${this.describe(key)}`);
  }

  describe(key: number): string {
    const k = this.keys[key] as KeyModel;
    const h = k.holder;
    return JSON.stringify({
      holder: h && { ...h, token: h.token.slice(0, 8) },
      completed: k.completed,
      completers: [...k.completers].map((t) => t.slice(0, 8)),
      results: [...k.results],
      blockedUntil: k.blockedUntil,
      lastFence: k.lastFence,
    });
  }

  private key(key: number): KeyModel {
    return this.keys[key] as KeyModel;
  }

  /** No unknown operation can interfere with what this call saw. */
  private settled(k: KeyModel, call: CallWindow): boolean {
    return !call.faulted && call.reqAt > k.blockedUntil + MARGIN_MS;
  }

  private count(what: string, k: KeyModel, call: CallWindow): void {
    const name = `${what}${this.settled(k, call) ? '' : ':unsettled'}`;
    this.counts[name] = (this.counts[name] ?? 0) + 1;
  }

  /** Another token's lease covers the whole call for certain (and no forget may have removed it). */
  private liveOther(k: KeyModel, token: string, call: CallWindow): Holder | undefined {
    const h = k.holder;
    if (!h || h.token === token || h.state !== 'held') return undefined;
    if (call.reqAt < k.forgetPhantomUntil) return undefined;
    return call.respAt < h.certainUntil - MARGIN_MS ? h : undefined;
  }

  /** An unknown outcome: the call may land (or still land) at any time before the phantom window ends. */
  unknown(key: number, call: CallWindow): void {
    const k = this.key(key);
    k.blockedUntil = Math.max(k.blockedUntil, call.respAt + (call.phantomMs ?? PHANTOM_MS) + this.leaseMs);
  }

  claimed(key: number, owner: number, token: string, fence: number, call: CallWindow, checkFence: boolean) {
    const k = this.key(key);
    this.count('claimed', k, call);
    if (k.completed === 'yes' && call.reqAt >= k.forgetPhantomUntil)
      this.fail(key, `o${owner} was granted a COMPLETED key again (its effect would run twice)`);
    const other = this.liveOther(k, token, call);
    if (other)
      this.fail(
        key,
        `two live owners: o${owner} was granted the key ${other.certainUntil - call.respAt} ms before o${other.owner}'s lease ended`,
      );
    if (checkFence && fence <= k.lastFence)
      this.fail(key, `fence went backwards: o${owner} got ${fence} after ${k.lastFence}`);
    k.lastFence = Math.max(k.lastFence, fence);
    k.holder = {
      owner,
      token,
      certainUntil: call.reqAt + this.leaseMs,
      mayUntil: call.respAt + this.leaseMs,
      state: 'held',
    };
    // A grant means no completion of it is in force (a maybe-completion did not happen).
    k.completed = 'no';
    k.completers.clear();
    k.results.clear();
    if (call.faulted) this.unknown(key, call);
  }

  sawCompleted(key: number, result: unknown, call: CallWindow): void {
    const k = this.key(key);
    this.count('sawCompleted', k, call);
    if (this.settled(k, call)) {
      if (k.completed === 'no') this.fail(key, `a key never completed reports COMPLETED (${String(result)})`);
      if (!k.results.has(String(result)))
        this.fail(key, `duplicate got result ${String(result)}, expected one of ${[...k.results].join('|')}`);
    }
    k.completed = 'yes';
    k.results = new Set([String(result)]);
    k.holder = undefined;
  }

  sawInFlight(key: number, call: CallWindow): void {
    const k = this.key(key);
    this.count('sawInFlight', k, call);
    if (!this.settled(k, call)) return;
    if (k.completed === 'yes') this.fail(key, 'a COMPLETED key is reported in flight');
    const h = k.holder;
    const free = k.completed === 'no' && (!h || call.reqAt > h.mayUntil + MARGIN_MS);
    if (free) this.fail(key, 'a free key (released, expired or never claimed) was refused as in flight');
  }

  completed(key: number, owner: number, token: string, value: string, call: CallWindow): void {
    const k = this.key(key);
    this.count('completed', k, call);
    if (k.completed === 'yes' && !k.completers.has(token) && call.reqAt >= k.forgetPhantomUntil)
      this.fail(key, `o${owner}'s complete overwrote another owner's completion`);
    const other = this.liveOther(k, token, call);
    if (other) this.fail(key, `stale o${owner} completed while o${other.owner}'s lease was live`);
    k.completed = 'yes';
    k.completers = new Set([token]);
    k.results = new Set([value]);
    k.holder = undefined;
    if (call.faulted) this.unknown(key, call);
  }

  completeRefused(key: number, owner: number, token: string, call: CallWindow): void {
    const k = this.key(key);
    this.count('completeRefused', k, call);
    if (!this.settled(k, call)) return;
    const h = k.holder;
    const otherMayHold = h && h.token !== token && call.reqAt < h.mayUntil + MARGIN_MS;
    const otherCompleted = k.completed !== 'no' && [...k.completers].some((t) => t !== token);
    if (!otherMayHold && !otherCompleted)
      this.fail(key, `o${owner}'s complete was refused although no other owner holds or completed the key`);
  }

  completeUnknown(key: number, token: string, value: string, call: CallWindow): void {
    const k = this.key(key);
    if (k.completed !== 'yes' || !k.completers.has(token)) {
      if (k.completed === 'no') {
        k.completers.clear();
        k.results.clear();
      }
      k.completed = 'maybe';
      k.completers.add(token);
      k.results.add(value);
    }
    this.unknown(key, call);
  }

  released(key: number, owner: number, token: string, call: CallWindow): void {
    const k = this.key(key);
    this.count('released', k, call);
    const other = this.liveOther(k, token, call);
    if (other) this.fail(key, `o${owner} released o${other.owner}'s live claim`);
    if (k.completed === 'yes' && call.reqAt >= k.forgetPhantomUntil)
      this.fail(key, `o${owner}'s release removed a COMPLETED record`);
    if (k.holder?.token === token || !k.holder) k.holder = undefined;
    if (call.faulted) this.unknown(key, call);
  }

  releaseRefused(key: number, owner: number, token: string, call: CallWindow): void {
    const k = this.key(key);
    this.count('releaseRefused', k, call);
    const h = k.holder;
    if (!this.settled(k, call) || h?.token !== token || h.state !== 'held' || k.completed !== 'no') return;
    // Redis drops an IN_PROGRESS record when its lease expires; Postgres keeps it until taken over.
    if (this.redisIsTheRecord && call.respAt >= h.certainUntil - MARGIN_MS) return;
    this.fail(key, `o${owner}'s release of its own claim was refused`);
  }

  releaseUnknown(key: number, token: string, call: CallWindow): void {
    const h = this.key(key).holder;
    if (h?.token === token) h.state = 'maybe-released';
    this.unknown(key, call);
  }

  extended(key: number, owner: number, token: string, call: CallWindow): void {
    const k = this.key(key);
    this.count('extended', k, call);
    if (k.completed === 'yes' && call.reqAt >= k.forgetPhantomUntil)
      this.fail(key, `o${owner}'s extend revived a COMPLETED key`);
    const h = k.holder;
    if (h?.token !== token) {
      // Postgres renews only the same token's record; Redis also re-takes an absent key (documented).
      if (!this.redisIsTheRecord && this.settled(k, call))
        this.fail(key, `extend by a non-owner (o${owner}) succeeded`);
      const other = this.liveOther(k, token, call);
      if (other) this.fail(key, `extend by non-owner o${owner} succeeded during o${other.owner}'s lease`);
    }
    k.holder = {
      owner,
      token,
      certainUntil: call.reqAt + this.leaseMs,
      mayUntil: call.respAt + this.leaseMs,
      state: 'held',
    };
    if (call.faulted) this.unknown(key, call);
  }

  extendRefused(key: number, owner: number, token: string, call: CallWindow): void {
    const k = this.key(key);
    this.count('extendRefused', k, call);
    const h = k.holder;
    if (!this.settled(k, call) || h?.token !== token || h.state !== 'held' || k.completed !== 'no') return;
    // Past the lease, Redis re-takes the key (if nobody else did) and Postgres renews it: refusal needs another owner.
    if (call.respAt < h.certainUntil - MARGIN_MS || !this.redisIsTheRecord)
      this.fail(key, `o${owner}'s extend of its own live claim was refused`);
  }

  extendUnknown(key: number, call: CallWindow): void {
    const h = this.key(key).holder;
    if (h) h.mayUntil = Math.max(h.mayUntil, call.respAt + this.leaseMs);
    this.unknown(key, call);
  }

  forgot(key: number, force: boolean, answer: ForgetAnswer, call: CallWindow): void {
    const k = this.key(key);
    this.count(`forgot-${String(answer)}`, k, call);
    const h = k.holder;
    const liveInProgress =
      k.completed === 'no' && h?.state === 'held' && call.respAt < h.certainUntil - MARGIN_MS;
    if (answer === 'in-progress') {
      if (force) this.fail(key, 'a forced forget was refused');
      const mayBeLive = k.completed !== 'yes' && h && call.reqAt < h.mayUntil + MARGIN_MS;
      if (this.settled(k, call) && !mayBeLive)
        this.fail(key, 'forget was refused as in progress although no live IN_PROGRESS record exists');
      return;
    }
    if (this.forgetRefusesLive && !force && liveInProgress && call.reqAt >= k.forgetPhantomUntil)
      this.fail(key, `forget without force removed ${h?.owner}'s live IN_PROGRESS record`);
    if (answer === 'absent' && this.settled(k, call) && (k.completed === 'yes' || liveInProgress))
      this.fail(key, 'forget answered absent although a live record exists');
    k.holder = undefined;
    k.completed = 'no';
    k.completers.clear();
    k.results.clear();
    if (call.faulted) this.forgetUnknown(key, force, call);
  }

  forgetUnknown(key: number, force: boolean, call: CallWindow): void {
    const k = this.key(key);
    if (k.holder) k.holder.state = 'maybe-released';
    if (k.completed === 'yes') k.completed = 'maybe';
    if (force || !this.forgetRefusesLive)
      k.forgetPhantomUntil = Math.max(k.forgetPhantomUntil, call.respAt + PHANTOM_MS);
    this.unknown(key, call);
  }

  /** What `get` must answer when nothing unknown interferes. */
  got(key: number, record: { state: string; result?: unknown } | null, call: CallWindow): void {
    const k = this.key(key);
    this.count('got', k, call);
    if (!this.settled(k, call)) return;
    const h = k.holder;
    if (k.completed === 'yes') {
      if (record?.state !== 'COMPLETED')
        this.fail(key, `get of a COMPLETED key answered ${record?.state ?? 'null'}`);
      if (!k.results.has(String(record.result)))
        this.fail(key, `get answered result ${String(record.result)}, expected ${[...k.results].join('|')}`);
    } else if (k.completed === 'no' && h?.state === 'held' && call.respAt < h.certainUntil - MARGIN_MS) {
      if (record?.state !== 'IN_PROGRESS')
        this.fail(key, `get of a live claim answered ${record?.state ?? 'null'}`);
    } else if (k.completed === 'no' && (!h || call.reqAt > h.mayUntil + MARGIN_MS)) {
      if (record !== null) this.fail(key, `get of a free key answered ${record.state}`);
    }
  }

  /** A Redis failover forgot the record (only store 'redis' loses it for good). */
  lostInRedis(key: number): void {
    if (!this.redisIsTheRecord) return;
    const k = this.key(key);
    k.holder = undefined;
    k.completed = 'no';
    k.completers.clear();
    k.results.clear();
  }

  /** Redis lost everything of the prefix, fence counter included. */
  flushedRedis(): void {
    if (!this.redisIsTheRecord) return;
    this.keys.forEach((k, key) => {
      this.lostInRedis(key);
      k.lastFence = 0;
    });
  }

  /** How long to sleep until every lease and unknown operation on `key` is over for certain. */
  waitToSettle(key: number, now: number): number {
    const k = this.key(key);
    const until = Math.max(k.holder?.mayUntil ?? 0, k.blockedUntil);
    return Math.max(0, until + MARGIN_MS + 20 - now);
  }
}
