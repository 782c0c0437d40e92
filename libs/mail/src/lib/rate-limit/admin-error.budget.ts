import type Redis from 'ioredis';
import { redisCall } from './local-fallback.budget';

/** What a summary says about a fingerprint; stored already redacted. */
export interface AdminErrorMeta {
  name: string;
  scope: string;
  message: string;
}

/**
 * `mail`: send it (with the occurrences counted since its previous mail); `throttled`: this
 * fingerprint was mailed in its window already; `summarised`: the budget is used up, counted into
 * the window's summary (`overBudget`: reports past the budget so far, 1 for the first).
 */
export type AdmitVerdict =
  | { verdict: 'mail'; moreOccurrences: number }
  | { verdict: 'throttled' }
  | { verdict: 'summarised'; overBudget: number };

export type AdmitResult = AdmitVerdict & {
  /** Starts of ended budget windows whose summary no process has taken yet. */
  dueWindows: number[];
};

export interface AdmitRequest {
  fingerprint: string;
  meta: AdminErrorMeta;
  /** Start of the fingerprint's throttle window (ms). */
  throttleWindowStart: number;
  throttleWindowMs: number;
  /** Start of the budget window (ms). */
  budgetWindowStart: number;
}

/** The errors counted past the budget in one window, taken once (by one process). */
export interface AdminErrorSummary {
  windowStart: number;
  /** 1 for the window's first summary; later ones (errors counted after it was taken) count up. */
  seq: number;
  /** Distinct fingerprints counted (exact up to {@link MAX_TRACKED_FINGERPRINTS}, estimated beyond). */
  distinct: number;
  occurrences: number;
  /** Every tracked fingerprint, most frequent first. */
  fingerprints: Array<{ fingerprint: string; count: number; meta?: AdminErrorMeta }>;
  /**
   * Occurrences by error name and scope (up to {@link MAX_TRACKED_GROUPS}), rarest first: an
   * attacker varies messages, rarely the route, handler or job, so a flood collapses into one group
   * and a different error stands out.
   */
  groups: AdminErrorGroup[];
}

export interface AdminErrorGroup {
  name: string;
  scope: string;
  count: number;
  /** Tracked fingerprints of this group. */
  fingerprints: number;
}

export interface AdminErrorBudgetConfig {
  mails: number;
  windowMs: number;
}

/** Fingerprints a window's summary tracks one by one; beyond, only a distinct estimate and a count. */
export const MAX_TRACKED_FINGERPRINTS = 1_000;

/** Error name + scope groups a window's summary tracks; beyond, occurrences only count in the total. */
export const MAX_TRACKED_GROUPS = 50;
/** How many times a summary whose send failed is put back for a retry. */
export const MAX_SUMMARY_RESTORES = 3;

const COUNTER_TTL_MS = 7 * 24 * 3_600_000;

/**
 * One report, atomically. KEYS: fingerprint lock, fingerprint's unreported count, budget used,
 * summary counts (hash), summary meta (hash), overflow distinct (HLL), overflow occurrences,
 * pending summaries (zset), groups (hash). ARGV: lock TTL, counter TTL, budget mails, summary TTL,
 * fingerprint, meta JSON, max tracked, budget window start, group, max groups. A mailed fingerprint holds its lock for the window;
 * one past the budget takes none (it costs no key of its own), so it is mailed at its first
 * occurrence in a window with budget left. Returns {verdict, count, due windows}.
 */
const ADMIT_SCRIPT = `
local due = redis.call('ZRANGEBYSCORE', KEYS[8], '-inf', '(' .. ARGV[8], 'LIMIT', 0, 10)
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('INCR', KEYS[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  return {'throttled', 0, due}
end
local used = redis.call('INCR', KEYS[3])
if used == 1 then redis.call('PEXPIRE', KEYS[3], ARGV[4]) end
if used <= tonumber(ARGV[3]) then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
  local count = tonumber(redis.call('GET', KEYS[2]) or '0')
  redis.call('DEL', KEYS[2])
  return {'mail', count, due}
end
if redis.call('HEXISTS', KEYS[4], ARGV[5]) == 1 or redis.call('HLEN', KEYS[4]) < tonumber(ARGV[7]) then
  redis.call('HINCRBY', KEYS[4], ARGV[5], 1)
  redis.call('HSETNX', KEYS[5], ARGV[5], ARGV[6])
else
  redis.call('PFADD', KEYS[6], ARGV[5])
  redis.call('INCR', KEYS[7])
end
if redis.call('HEXISTS', KEYS[9], ARGV[9]) == 1 or redis.call('HLEN', KEYS[9]) < tonumber(ARGV[10]) then
  redis.call('HINCRBY', KEYS[9], ARGV[9], 1)
  redis.call('PEXPIRE', KEYS[9], ARGV[4])
end
for i = 4, 7 do
  if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('PEXPIRE', KEYS[i], ARGV[4]) end
end
redis.call('ZADD', KEYS[8], ARGV[8], ARGV[8])
redis.call('PEXPIRE', KEYS[8], ARGV[4])
return {'summarised', used - tonumber(ARGV[3]), due}
`;

/**
 * Takes a window's summary (once: the counts are deleted as they are read). KEYS: counts, meta,
 * overflow HLL, overflow occurrences, pending zset, sequence, groups. ARGV: window start, sequence
 * TTL. Returns {0} when there is nothing to summarise, else {seq, counts, meta, extraDistinct,
 * extraOccurrences, groups}.
 */
const TAKE_SCRIPT = `
redis.call('ZREM', KEYS[5], ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 0 and redis.call('EXISTS', KEYS[4]) == 0 then return {0} end
local counts = redis.call('HGETALL', KEYS[1])
local meta = redis.call('HGETALL', KEYS[2])
local extraDistinct = redis.call('PFCOUNT', KEYS[3])
local extraOccurrences = tonumber(redis.call('GET', KEYS[4]) or '0')
local groups = redis.call('HGETALL', KEYS[7])
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[7])
local seq = redis.call('INCR', KEYS[6])
redis.call('PEXPIRE', KEYS[6], ARGV[2])
return {seq, counts, meta, extraDistinct, extraOccurrences, groups}
`;

/**
 * Puts a taken summary back after its mail failed, at most ARGV[3] times per window, and marks the
 * window pending again (the next report or timer retries). KEYS: counts, meta, overflow
 * occurrences, pending zset, groups, restores. ARGV: window start, TTL, max restores, JSON
 * {counts: [[fingerprint, count, meta JSON]], groups: [[group, count]], extra}. Returns 1 if put back.
 */
const RESTORE_SCRIPT = `
local restores = redis.call('INCR', KEYS[6])
redis.call('PEXPIRE', KEYS[6], ARGV[2])
if restores > tonumber(ARGV[3]) then return 0 end
local summary = cjson.decode(ARGV[4])
for _, entry in ipairs(summary.counts) do
  redis.call('HINCRBY', KEYS[1], entry[1], entry[2])
  if entry[3] then redis.call('HSETNX', KEYS[2], entry[1], entry[3]) end
end
for _, entry in ipairs(summary.groups) do redis.call('HINCRBY', KEYS[5], entry[1], entry[2]) end
if summary.extra > 0 then redis.call('INCRBY', KEYS[3], summary.extra) end
for _, i in ipairs({1, 2, 3, 5}) do
  if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
end
redis.call('ZADD', KEYS[4], ARGV[1], ARGV[1])
redis.call('PEXPIRE', KEYS[4], ARGV[2])
return 1
`;

/** Where admin error reports are counted: Redis (all processes), or this process while Redis is down. */
export interface AdminErrorBudgetStore {
  admit(request: AdmitRequest): Promise<AdmitResult>;
  /** The window's summary, or undefined when nothing was counted (or another process took it). */
  take(windowStart: number): Promise<AdminErrorSummary | undefined>;
  /** Puts back a taken summary whose mail failed, to be taken again; false once {@link MAX_SUMMARY_RESTORES} is reached. */
  restore(summary: AdminErrorSummary): Promise<boolean>;
}

/** The group field of a report: its error name and scope. */
export function groupKeyOf(meta: Pick<AdminErrorMeta, 'name' | 'scope'>): string {
  return JSON.stringify([meta.name.slice(0, 200), meta.scope.slice(0, 300)]);
}

function parseGroupKey(key: string): { name: string; scope: string } {
  try {
    const [name, scope] = JSON.parse(key) as unknown[];
    return { name: String(name ?? ''), scope: String(scope ?? '') };
  } catch {
    return { name: '', scope: '' };
  }
}

function summaryOf(
  windowStart: number,
  seq: number,
  counts: Map<string, number>,
  meta: Map<string, AdminErrorMeta>,
  extraDistinct: number,
  extraOccurrences: number,
  groupCounts: Map<string, number>,
): AdminErrorSummary {
  const fingerprints = [...counts]
    .map(([fingerprint, count]) => ({ fingerprint, count, meta: meta.get(fingerprint) }))
    .sort((a, b) => b.count - a.count || a.fingerprint.localeCompare(b.fingerprint));
  const perGroup = new Map<string, number>();
  for (const entry of fingerprints) {
    if (!entry.meta) continue;
    const key = groupKeyOf(entry.meta);
    perGroup.set(key, (perGroup.get(key) ?? 0) + 1);
  }
  const groups = [...groupCounts]
    .map(([key, count]) => ({ ...parseGroupKey(key), count, fingerprints: perGroup.get(key) ?? 0 }))
    .sort((a, b) => a.count - b.count || a.scope.localeCompare(b.scope) || a.name.localeCompare(b.name));
  return {
    windowStart,
    seq,
    distinct: fingerprints.length + extraDistinct,
    occurrences: fingerprints.reduce((sum, entry) => sum + entry.count, 0) + extraOccurrences,
    fingerprints,
    groups,
  };
}

function parseMeta(json: string): AdminErrorMeta | undefined {
  try {
    const value = JSON.parse(json) as Partial<AdminErrorMeta>;
    return {
      name: String(value.name ?? ''),
      scope: String(value.scope ?? ''),
      message: String(value.message ?? ''),
    };
  } catch {
    return undefined;
  }
}

function pairs(flat: unknown): Array<[string, string]> {
  const list = Array.isArray(flat) ? flat.map(String) : [];
  const result: Array<[string, string]> = [];
  for (let i = 0; i + 1 < list.length; i += 2) result.push([list[i], list[i + 1]]);
  return result;
}

/** The budget shared by every process on the same Redis and key prefix. Calls reject when Redis is unavailable. */
export class RedisAdminErrorBudget implements AdminErrorBudgetStore {
  constructor(
    private readonly redis: Redis,
    private readonly keyPrefix: string,
    private readonly budget: AdminErrorBudgetConfig,
  ) {}

  private windowKeys(windowStart: number): string[] {
    const base = `${this.keyPrefix}admin-budget:${windowStart}`;
    return [`${base}:counts`, `${base}:meta`, `${base}:overflow`, `${base}:overflow-count`];
  }

  private get pendingKey(): string {
    return `${this.keyPrefix}admin-budget:pending`;
  }

  /** Summaries outlive their window long enough for the next window's first report to take them. */
  private get summaryTtlMs(): number {
    return this.budget.windowMs * 2 + 3_600_000;
  }

  async admit(request: AdmitRequest): Promise<AdmitResult> {
    const lock = `${this.keyPrefix}admin-error:${request.fingerprint}`;
    const reply = (await redisCall(this.redis, () =>
      this.redis.eval(
        ADMIT_SCRIPT,
        9,
        `${lock}:window:${request.throttleWindowStart}`,
        `${lock}:unreported`,
        `${this.keyPrefix}admin-budget:${request.budgetWindowStart}:used`,
        ...this.windowKeys(request.budgetWindowStart),
        this.pendingKey,
        `${this.keyPrefix}admin-budget:${request.budgetWindowStart}:groups`,
        request.throttleWindowMs * 2,
        COUNTER_TTL_MS,
        this.budget.mails,
        this.summaryTtlMs,
        request.fingerprint,
        JSON.stringify(request.meta),
        MAX_TRACKED_FINGERPRINTS,
        request.budgetWindowStart,
        groupKeyOf(request.meta),
        MAX_TRACKED_GROUPS,
      ),
    )) as [string, number, unknown[]];
    const dueWindows = (Array.isArray(reply[2]) ? reply[2] : []).map(Number);
    if (reply[0] === 'mail') return { verdict: 'mail', moreOccurrences: Number(reply[1]), dueWindows };
    if (reply[0] === 'throttled') return { verdict: 'throttled', dueWindows };
    return { verdict: 'summarised', overBudget: Number(reply[1]), dueWindows };
  }

  async take(windowStart: number): Promise<AdminErrorSummary | undefined> {
    const reply = (await redisCall(this.redis, () =>
      this.redis.eval(
        TAKE_SCRIPT,
        7,
        ...this.windowKeys(windowStart),
        this.pendingKey,
        `${this.keyPrefix}admin-budget:${windowStart}:seq`,
        `${this.keyPrefix}admin-budget:${windowStart}:groups`,
        windowStart,
        this.summaryTtlMs,
      ),
    )) as unknown[];
    const seq = Number(reply[0]);
    if (!seq) return undefined;
    const counts = new Map(pairs(reply[1]).map(([fingerprint, count]) => [fingerprint, Number(count)]));
    const meta = new Map<string, AdminErrorMeta>();
    for (const [fingerprint, json] of pairs(reply[2])) {
      const parsed = parseMeta(json);
      if (parsed) meta.set(fingerprint, parsed);
    }
    const groups = new Map(pairs(reply[5]).map(([key, count]) => [key, Number(count)]));
    return summaryOf(windowStart, seq, counts, meta, Number(reply[3]), Number(reply[4]), groups);
  }

  async restore(summary: AdminErrorSummary): Promise<boolean> {
    const [counts, meta, , overflowCount] = this.windowKeys(summary.windowStart);
    const base = `${this.keyPrefix}admin-budget:${summary.windowStart}`;
    const payload = {
      counts: summary.fingerprints.map(({ fingerprint, count, meta: details }) =>
        details ? [fingerprint, count, JSON.stringify(details)] : [fingerprint, count],
      ),
      groups: summary.groups.map((group) => [groupKeyOf(group), group.count]),
      extra: summary.occurrences - summary.fingerprints.reduce((sum, entry) => sum + entry.count, 0),
    };
    const reply = await redisCall(this.redis, () =>
      this.redis.eval(
        RESTORE_SCRIPT,
        6,
        counts,
        meta,
        overflowCount,
        this.pendingKey,
        `${base}:groups`,
        `${base}:restores`,
        summary.windowStart,
        this.summaryTtlMs,
        MAX_SUMMARY_RESTORES,
        JSON.stringify(payload),
      ),
    );
    return Number(reply) === 1;
  }
}

interface LocalWindow {
  used: number;
  counts: Map<string, number>;
  meta: Map<string, AdminErrorMeta>;
  extraDistinct: Set<string>;
  extraOccurrences: number;
  groups: Map<string, number>;
  seq: number;
  restores: number;
}

/**
 * The same budget in this process only, for while Redis is down: each process then mails up to the
 * budget per window and summarises the rest itself. Bounded like the Redis one (distinct
 * fingerprints past {@link MAX_TRACKED_FINGERPRINTS} are only counted, up to 10× that many).
 */
export class LocalAdminErrorBudget implements AdminErrorBudgetStore {
  private readonly windows = new Map<number, LocalWindow>();
  /** Fingerprint → throttle window end and the occurrences counted meanwhile. */
  private readonly locks = new Map<string, { until: number; unreported: number }>();

  constructor(private readonly budget: AdminErrorBudgetConfig) {}

  async admit(request: AdmitRequest): Promise<AdmitResult> {
    const { fingerprint, throttleWindowStart, throttleWindowMs, budgetWindowStart } = request;
    this.prune(throttleWindowStart, budgetWindowStart);
    const dueWindows = this.windowsWithCounts().filter((start) => start < budgetWindowStart);
    const lock = this.locks.get(fingerprint);
    if (lock && lock.until > throttleWindowStart) {
      lock.unreported++;
      return { verdict: 'throttled', dueWindows };
    }
    const window = this.window(budgetWindowStart);
    window.used++;
    if (window.used <= this.budget.mails) {
      this.locks.set(fingerprint, { until: throttleWindowStart + throttleWindowMs, unreported: 0 });
      return { verdict: 'mail', moreOccurrences: lock?.unreported ?? 0, dueWindows };
    }
    if (window.counts.has(fingerprint) || window.counts.size < MAX_TRACKED_FINGERPRINTS) {
      window.counts.set(fingerprint, (window.counts.get(fingerprint) ?? 0) + 1);
      if (!window.meta.has(fingerprint)) window.meta.set(fingerprint, request.meta);
    } else {
      if (window.extraDistinct.size < MAX_TRACKED_FINGERPRINTS * 10) window.extraDistinct.add(fingerprint);
      window.extraOccurrences++;
    }
    const group = groupKeyOf(request.meta);
    if (window.groups.has(group) || window.groups.size < MAX_TRACKED_GROUPS) {
      window.groups.set(group, (window.groups.get(group) ?? 0) + 1);
    }
    return { verdict: 'summarised', overBudget: window.used - this.budget.mails, dueWindows };
  }

  async take(windowStart: number): Promise<AdminErrorSummary | undefined> {
    const window = this.windows.get(windowStart);
    if (!window || (window.counts.size === 0 && window.extraOccurrences === 0)) return undefined;
    window.seq++;
    const summary = summaryOf(
      windowStart,
      window.seq,
      window.counts,
      window.meta,
      window.extraDistinct.size,
      window.extraOccurrences,
      window.groups,
    );
    window.counts = new Map();
    window.meta = new Map();
    window.extraDistinct = new Set();
    window.extraOccurrences = 0;
    window.groups = new Map();
    return summary;
  }

  async restore(summary: AdminErrorSummary): Promise<boolean> {
    const window = this.window(summary.windowStart);
    if (++window.restores > MAX_SUMMARY_RESTORES) return false;
    let tracked = 0;
    for (const { fingerprint, count, meta } of summary.fingerprints) {
      window.counts.set(fingerprint, (window.counts.get(fingerprint) ?? 0) + count);
      if (meta && !window.meta.has(fingerprint)) window.meta.set(fingerprint, meta);
      tracked += count;
    }
    for (const group of summary.groups) {
      const key = groupKeyOf(group);
      window.groups.set(key, (window.groups.get(key) ?? 0) + group.count);
    }
    window.extraOccurrences += summary.occurrences - tracked;
    return true;
  }

  /** Budget windows holding counts not taken yet (for the shutdown flush). */
  windowsWithCounts(): number[] {
    return [...this.windows]
      .filter(([, window]) => window.counts.size > 0 || window.extraOccurrences > 0)
      .map(([start]) => start);
  }

  private window(start: number): LocalWindow {
    let window = this.windows.get(start);
    if (!window) {
      window = {
        used: 0,
        counts: new Map(),
        meta: new Map(),
        extraDistinct: new Set(),
        extraOccurrences: 0,
        groups: new Map(),
        seq: 0,
        restores: 0,
      };
      this.windows.set(start, window);
    }
    return window;
  }

  /**
   * Forgets locks a window past their end (their unreported count goes into the fingerprint's next
   * mail until then) and taken windows two budget windows old.
   */
  private prune(throttleWindowStart: number, budgetWindowStart: number): void {
    for (const [fingerprint, lock] of this.locks) {
      if (lock.until < throttleWindowStart) this.locks.delete(fingerprint);
    }
    for (const [start, window] of this.windows) {
      const empty = window.counts.size === 0 && window.extraOccurrences === 0;
      if (empty && start + this.budget.windowMs * 2 <= budgetWindowStart) this.windows.delete(start);
    }
  }
}
