import type { TestingModule } from '@nestjs/testing';
import fc from 'fast-check';
import Redis from 'ioredis';
import { DataSource } from 'typeorm';
import {
  type Claim,
  type DedupModuleOptions,
  type DedupStoreMode,
  IdempotencyService,
  StaleClaimError,
  StoreUnavailableError,
} from '../../src';
import { DEDUP_ENTITIES } from '../../src/typeorm';
import { startModule, storeOptions } from './dedup.fixtures';
import {
  type CallWindow,
  type ForgetAnswer,
  LifecycleModel,
  LifecycleViolation,
  PG_PHANTOM_MS,
  PHANTOM_MS,
} from './lifecycle.model';
import { type TcpFault, TcpFaultProxy } from './tcp-fault.proxy';

export const KEYS = ['k0', 'k1', 'k2'] as const;
export const REDIS_TIMEOUT_MS = 150;

/** A fault injected into one step, on the stepping owner's connections. */
export type StepFault =
  { readonly on: 'redis' | 'postgres'; readonly fault: TcpFault } | { readonly on: 'pg-terminate' };

const faultName = (fault?: StepFault) =>
  !fault ? '' : fault.on === 'pg-terminate' ? ' !pg-terminate' : ` !${fault.on}:${fault.fault.kind}`;

/** One worker: its own Nest app, its own Redis client and Postgres pool, each behind a fault proxy. */
interface Owner {
  readonly index: number;
  readonly moduleRef: TestingModule;
  readonly service: IdempotencyService;
  readonly redis?: Redis;
  readonly dataSource?: DataSource;
  readonly redisProxy?: TcpFaultProxy;
  readonly pgProxy?: TcpFaultProxy;
  readonly appName: string;
}

type ForgetFn = (key: string, options: { scope: string; force?: boolean }) => Promise<unknown>;

/** 2–3 workers sharing the real stores, plus admin connections that play the failing infrastructure. */
export class LifecycleSystem {
  scope = 'run0';
  forgetRefusesLive = false;
  /** Faults that fired, by kind. */
  readonly faultsFired: Record<string, number> = {};

  private constructor(
    readonly store: DedupStoreMode,
    readonly owners: readonly Owner[],
    private readonly admin: { redis: Redis; dataSource: DataSource },
    private readonly keyPrefix: string,
  ) {}

  static async start(
    store: DedupStoreMode,
    ownerCount: number,
    admin: { redis: Redis; dataSource: DataSource },
  ): Promise<LifecycleSystem> {
    const base: DedupModuleOptions = storeOptions(store, admin, {
      redisTimeoutMs: REDIS_TIMEOUT_MS,
      redisRetryAfterMs: 50,
    });
    const redisUrl = new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
    const pgUrl = new URL(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
    const owners: Owner[] = [];
    for (let index = 0; index < ownerCount; index++) {
      const appName = `dedup-model-${process.pid}-${store.replace('+', '-')}-${index}`;
      let redis: Redis | undefined;
      let redisProxy: TcpFaultProxy | undefined;
      if (store !== 'postgres') {
        redisProxy = new TcpFaultProxy(redisUrl.hostname, Number(redisUrl.port || 6379));
        redis = new Redis({ host: '127.0.0.1', port: await redisProxy.listen(), maxRetriesPerRequest: 1 });
        redis.on('error', () => undefined);
      }
      let dataSource: DataSource | undefined;
      let pgProxy: TcpFaultProxy | undefined;
      if (store !== 'redis') {
        pgProxy = new TcpFaultProxy(pgUrl.hostname, Number(pgUrl.port || 5432));
        const url = new URL(pgUrl);
        url.hostname = '127.0.0.1';
        url.port = String(await pgProxy.listen());
        dataSource = new DataSource({
          type: 'postgres',
          url: url.toString(),
          entities: DEDUP_ENTITIES,
          synchronize: false,
          extra: { max: 4, connectionTimeoutMillis: 1000, application_name: appName },
        });
        await dataSource.initialize();
      }
      const moduleRef = await startModule({
        ...base,
        redis,
        dataSource,
        // Workers of one fleet may differ: every combination must keep the guarantees.
        ...(store === 'redis+postgres' ? { onStoreDown: index % 2 === 0 ? 'fail' : 'bypass' } : {}),
      });
      owners.push({
        index,
        moduleRef,
        service: moduleRef.get(IdempotencyService),
        redis,
        dataSource,
        redisProxy,
        pgProxy,
        appName,
      });
    }
    const system = new LifecycleSystem(store, owners, admin, base.keyPrefix as string);
    system.forgetRefusesLive = await system.probeForget();
    return system;
  }

  /** Whether this build's `forget` refuses a live IN_PROGRESS record without `force`. */
  private async probeForget(): Promise<boolean> {
    const service = (this.owners[0] as Owner).service;
    const probe = await service.claim('probe', { scope: 'probe', leaseMs: 5000 });
    try {
      await this.forgetOf(service)('probe', { scope: 'probe' });
      return false;
    } catch (error) {
      if ((error as Error).name === 'RecordInFlightError') return true;
      throw error;
    } finally {
      if (probe.status === 'claimed') await service.release(probe.claim).catch(() => undefined);
    }
  }

  forgetOf(service: IdempotencyService): ForgetFn {
    return (service.forget as unknown as ForgetFn).bind(service);
  }

  storageKey(key: number): string {
    return `${this.keyPrefix}${this.scope}:${KEYS[key]}`;
  }

  async loseKey(key: number): Promise<void> {
    await this.admin.redis.del(this.storageKey(key));
  }

  async flushRedis(): Promise<void> {
    await this.admin.redis.del(...KEYS.map((_, key) => this.storageKey(key)), `${this.keyPrefix}~fence`);
  }

  private readonly lastRedisFault: number[] = [];

  /** A Redis fault of `owner` whose queued or resent commands may still be on their way. */
  private recentRedisFault(owner: number): boolean {
    return Date.now() < (this.lastRedisFault[owner] ?? 0) + PHANTOM_MS;
  }

  /** Runs one call of `owner` with `fault` injected into it; reports its window and outcome. */
  async step<T>(
    owner: number,
    fault: StepFault | undefined,
    call: (service: IdempotencyService) => Promise<T>,
  ): Promise<{ window: CallWindow; value?: T; error?: unknown }> {
    const o = this.owners[owner] as Owner;
    let terminated = false;
    if (fault?.on === 'pg-terminate' && o.dataSource) {
      await this.admin.dataSource.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`,
        [o.appName],
      );
      terminated = true;
    } else if (fault?.on === 'redis') o.redisProxy?.arm(fault.fault);
    else if (fault?.on === 'postgres') o.pgProxy?.arm(fault.fault);
    const reqAt = Date.now();
    let value: T | undefined;
    let error: unknown;
    try {
      value = await call(o.service);
    } catch (caught) {
      error = caught;
    }
    const respAt = Date.now();
    const fired = [o.redisProxy?.disarm(), o.pgProxy?.disarm()].some(Boolean);
    if (fault && (fired || terminated)) {
      const name = faultName(fault).trim();
      this.faultsFired[name] = (this.faultsFired[name] ?? 0) + 1;
    }
    // Only a Redis client resends or sends queued commands late.
    const phantomMs =
      this.store === 'postgres' || (fault && fault.on !== 'redis' && !this.recentRedisFault(owner))
        ? PG_PHANTOM_MS
        : PHANTOM_MS;
    if (fault?.on === 'redis' && fired) this.lastRedisFault[owner] = respAt;
    return { window: { reqAt, respAt, faulted: fired || terminated, phantomMs }, value, error };
  }

  async close(): Promise<void> {
    for (const owner of this.owners) {
      await owner.moduleRef.close();
      owner.redis?.disconnect();
      await owner.dataSource?.destroy().catch(() => undefined);
      await owner.redisProxy?.close();
      await owner.pgProxy?.close();
    }
  }
}

/** What the commands share within one run: the model and the claims each owner got. */
export class RunState {
  /** Claims each owner was granted, per key, oldest first. */
  private readonly claims = new Map<string, Claim[]>();

  constructor(
    readonly model: LifecycleModel,
    readonly leaseMs: number,
  ) {}

  claimsOf(owner: number, key: number): Claim[] {
    return this.claims.get(`${owner}:${key}`) ?? [];
  }

  add(owner: number, key: number, claim: Claim): void {
    this.claims.set(`${owner}:${key}`, [...this.claimsOf(owner, key), claim]);
  }

  /** `pick` 0 is the latest claim, 1 the one before (a stale one), and so on. */
  pick(owner: number, key: number, pick: number): Claim | undefined {
    const claims = this.claimsOf(owner, key);
    return claims[claims.length - 1 - (pick % Math.max(1, claims.length))];
  }
}

type Cmd = fc.AsyncCommand<RunState, LifecycleSystem, false>;

/** Faults surface as StoreUnavailableError (or the documented StaleClaimError / RecordInFlightError). */
function expectStoreError(error: unknown, what: string): void {
  if (error instanceof StoreUnavailableError) return;
  throw new LifecycleViolation(
    `${what} threw ${(error as Error)?.name ?? typeof error}: ${(error as Error)?.message ?? String(error)}`,
  );
}

const keyIndex = (claim: Claim) => KEYS.indexOf(claim.key as (typeof KEYS)[number]);

function noteClaim(
  state: RunState,
  sys: LifecycleSystem,
  owner: number,
  key: number,
  outcome: Awaited<ReturnType<IdempotencyService['claim']>>,
  window: CallWindow,
): void {
  const { model } = state;
  // A fault may have run the command more than once (a resend after a lost reply): its answer is not the whole story.
  if (window.faulted) model.unknown(key, window);
  if (outcome.status === 'claimed') {
    state.add(owner, key, outcome.claim);
    // A flushed Redis counter restarts: fences are only monotonic while the counter survives.
    model.claimed(
      key,
      owner,
      outcome.claim.token,
      outcome.claim.fence,
      window,
      sys.store !== 'redis' || !flushed.has(state),
    );
  } else if (outcome.status === 'completed') model.sawCompleted(key, outcome.result, window);
  else model.sawInFlight(key, window);
}

const flushed = new WeakSet<RunState>();

class ClaimCommand implements Cmd {
  constructor(
    readonly owner: number,
    readonly keys: readonly number[],
    readonly fault?: StepFault,
  ) {}
  check = () => true;
  async run(state: RunState, sys: LifecycleSystem): Promise<void> {
    const items = this.keys.map((key) => ({ key: KEYS[key] as string }));
    const { window, value, error } = await sys.step(this.owner, this.fault, (s) =>
      s.claimMany(items, { scope: sys.scope, leaseMs: state.leaseMs }),
    );
    if (error !== undefined) {
      expectStoreError(error, 'claim');
      for (const key of this.keys) state.model.unknown(key, window);
      return;
    }
    // Repeats of a key in one call are reported in flight behind the first: only the first tells.
    const seen = new Set<number>();
    (value ?? []).forEach((outcome, i) => {
      const key = this.keys[i] as number;
      if (seen.has(key)) return;
      seen.add(key);
      noteClaim(state, sys, this.owner, key, outcome, window);
    });
  }
  toString = () => `claim(o${this.owner},${this.keys.map((k) => `k${k}`).join('+')})${faultName(this.fault)}`;
}

const rank = (r: { value?: { status: string }; error?: unknown; window: CallWindow }) =>
  r.value?.status === 'claimed' ? 0 : r.error !== undefined || r.window.faulted ? 1 : 2;

class RaceCommand implements Cmd {
  constructor(
    readonly key: number,
    readonly faultOwner: number,
    readonly fault?: StepFault,
  ) {}
  check = () => true;
  async run(state: RunState, sys: LifecycleSystem): Promise<void> {
    const results = await Promise.all(
      sys.owners.map((o) =>
        sys.step(o.index, o.index === this.faultOwner ? this.fault : undefined, (s) =>
          s.claim(KEYS[this.key] as string, { scope: sys.scope, leaseMs: state.leaseMs }),
        ),
      ),
    );
    const reqAt = Math.min(...results.map((r) => r.window.reqAt));
    const ordered = results
      .map((r, owner) => ({ ...r, owner, window: { ...r.window, reqAt } }))
      // Concurrent answers are explained by each other: grants first, then unknown outcomes, then refusals.
      .sort((a, b) => rank(a) - rank(b) || a.window.respAt - b.window.respAt);
    // In redis+postgres the first racer's Redis claim turns the others away as in flight while it asks
    // Postgres, even for a key Postgres has completed: an in-flight answer beside any other says nothing.
    const explained = results.some((r) => r.value?.status !== 'in-flight');
    for (const { owner, window, value, error } of ordered) {
      if (error !== undefined) {
        expectStoreError(error, 'claim');
        state.model.unknown(this.key, window);
      } else if (value && !(explained && value.status === 'in-flight'))
        noteClaim(state, sys, owner, this.key, value, window);
    }
  }
  toString = () => `race(k${this.key})${this.fault ? `${faultName(this.fault)}@o${this.faultOwner}` : ''}`;
}

abstract class HeldCommand implements Cmd {
  constructor(
    readonly owner: number,
    readonly key: number,
    readonly pick: number,
    readonly fault?: StepFault,
  ) {}
  check = (state: Readonly<RunState>) => state.claimsOf(this.owner, this.key).length > 0;
  abstract run(state: RunState, sys: LifecycleSystem): Promise<void>;
  protected claim(state: RunState): Claim {
    return state.pick(this.owner, this.key, this.pick) as Claim;
  }
  protected label(op: string) {
    return `${op}(o${this.owner},k${this.key}${this.pick ? `,stale${this.pick}` : ''})${faultName(this.fault)}`;
  }
}

class CompleteCommand extends HeldCommand {
  override async run(state: RunState, sys: LifecycleSystem): Promise<void> {
    const claim = this.claim(state);
    const value = `o${this.owner}:${claim.token.slice(0, 8)}`;
    const { window, error } = await sys.step(this.owner, this.fault, (s) => s.complete(claim, value));
    const key = keyIndex(claim);
    if (error === undefined) state.model.completed(key, this.owner, claim.token, value, window);
    else if (error instanceof StaleClaimError) {
      if (window.faulted) state.model.completeUnknown(key, claim.token, value, window);
      else state.model.completeRefused(key, this.owner, claim.token, window);
    } else {
      expectStoreError(error, 'complete');
      state.model.completeUnknown(key, claim.token, value, window);
    }
  }
  override toString = () => this.label('complete');
}

class ReleaseCommand extends HeldCommand {
  override async run(state: RunState, sys: LifecycleSystem): Promise<void> {
    const claim = this.claim(state);
    const { window, value, error } = await sys.step(this.owner, this.fault, (s) => s.release(claim));
    const key = keyIndex(claim);
    if (error !== undefined) {
      expectStoreError(error, 'release');
      state.model.releaseUnknown(key, claim.token, window);
    } else if (value) state.model.released(key, this.owner, claim.token, window);
    else if (window.faulted) state.model.releaseUnknown(key, claim.token, window);
    else state.model.releaseRefused(key, this.owner, claim.token, window);
  }
  override toString = () => this.label('release');
}

class ExtendCommand extends HeldCommand {
  override async run(state: RunState, sys: LifecycleSystem): Promise<void> {
    const claim = this.claim(state);
    const { window, value, error } = await sys.step(this.owner, this.fault, (s) => s.extend(claim));
    const key = keyIndex(claim);
    if (error !== undefined) {
      expectStoreError(error, 'extend');
      state.model.extendUnknown(key, window);
    } else if (value) state.model.extended(key, this.owner, claim.token, window);
    else if (window.faulted) state.model.extendUnknown(key, window);
    else state.model.extendRefused(key, this.owner, claim.token, window);
  }
  override toString = () => this.label('extend');
}

class ForgetCommand implements Cmd {
  constructor(
    readonly owner: number,
    readonly key: number,
    readonly force: boolean,
    readonly fault?: StepFault,
  ) {}
  check = () => true;
  async run(state: RunState, sys: LifecycleSystem): Promise<void> {
    const { window, value, error } = await sys.step(this.owner, this.fault, (s) =>
      sys.forgetOf(s)(KEYS[this.key] as string, { scope: sys.scope, force: this.force }),
    );
    let answer: ForgetAnswer;
    if (error === undefined) answer = value === true ? 'forgotten' : 'absent';
    else if ((error as Error).name === 'RecordInFlightError') answer = 'in-progress';
    else {
      expectStoreError(error, 'forget');
      state.model.forgetUnknown(this.key, this.force, window);
      return;
    }
    state.model.forgot(this.key, this.force, answer, window);
  }
  toString = () => `forget(o${this.owner},k${this.key}${this.force ? ',force' : ''})${faultName(this.fault)}`;
}

/**
 * One owner completes while another claims the same key, concurrently. Whatever the timing, both
 * cannot succeed: a grant before the completion makes it stale, a grant after it re-runs a completed key.
 */
class CompleteVersusClaimCommand implements Cmd {
  constructor(
    readonly completer: number,
    readonly claimer: number,
    readonly key: number,
    readonly fault?: StepFault,
  ) {}
  check = (state: Readonly<RunState>) =>
    this.completer !== this.claimer && state.claimsOf(this.completer, this.key).length > 0;
  async run(state: RunState, sys: LifecycleSystem): Promise<void> {
    const claim = state.pick(this.completer, this.key, 0) as Claim;
    const value = `o${this.completer}:${claim.token.slice(0, 8)}`;
    const [completion, claimed] = await Promise.all([
      sys.step(this.completer, this.fault, (s) => s.complete(claim, value)),
      sys.step(this.claimer, undefined, (s) =>
        s.claim(KEYS[this.key] as string, { scope: sys.scope, leaseMs: state.leaseMs }),
      ),
    ]);
    if (completion.error === undefined && claimed.value?.status === 'claimed')
      throw new LifecycleViolation(
        `k${this.key}: o${this.completer}'s complete and o${this.claimer}'s claim both succeeded at once`,
      );
    // The order of the two is unknown: refusals and answers of either are not checked against the model.
    const concurrent = (w: CallWindow): CallWindow => ({ ...w, faulted: true, phantomMs: 0 });
    if (claimed.error !== undefined) {
      expectStoreError(claimed.error, 'claim');
      state.model.unknown(this.key, claimed.window);
    } else if (claimed.value?.status === 'claimed') {
      noteClaim(state, sys, this.claimer, this.key, claimed.value, claimed.window);
    }
    if (completion.error === undefined)
      state.model.completed(this.key, this.completer, claim.token, value, concurrent(completion.window));
    else if (completion.error instanceof StaleClaimError)
      state.model.unknown(this.key, concurrent(completion.window));
    else {
      expectStoreError(completion.error, 'complete');
      state.model.completeUnknown(this.key, claim.token, value, completion.window);
    }
    if (claimed.value?.status === 'completed')
      state.model.sawCompleted(this.key, claimed.value.result, concurrent(claimed.window));
    else if (claimed.value?.status === 'in-flight') state.model.unknown(this.key, concurrent(claimed.window));
  }
  toString = () =>
    `complete(o${this.completer},k${this.key})${faultName(this.fault)} || claim(o${this.claimer},k${this.key})`;
}

class GetCommand implements Cmd {
  constructor(
    readonly owner: number,
    readonly key: number,
    readonly fault?: StepFault,
  ) {}
  check = () => true;
  async run(state: RunState, sys: LifecycleSystem): Promise<void> {
    const { window, value, error } = await sys.step(this.owner, this.fault, (s) =>
      s.get(KEYS[this.key] as string, { scope: sys.scope }),
    );
    if (error !== undefined) return expectStoreError(error, 'get');
    state.model.got(this.key, value ?? null, window);
  }
  toString = () => `get(o${this.owner},k${this.key})${faultName(this.fault)}`;
}

/** Sleeps until every lease and unknown operation on the key is over (bounded). */
class ExpireCommand implements Cmd {
  constructor(readonly key: number) {}
  check = () => true;
  async run(state: RunState): Promise<void> {
    const wait = Math.min(state.model.waitToSettle(this.key, Date.now()), state.leaseMs + 400);
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
  toString = () => `expire(k${this.key})`;
}

class SleepCommand implements Cmd {
  constructor(readonly ms: number) {}
  check = () => true;
  async run(): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, this.ms));
  }
  toString = () => `sleep(${this.ms})`;
}

/** A Redis failover that forgot one record. */
class LoseKeyCommand implements Cmd {
  constructor(readonly key: number) {}
  check = () => true;
  async run(state: RunState, sys: LifecycleSystem): Promise<void> {
    await sys.loseKey(this.key);
    state.model.lostInRedis(this.key);
  }
  toString = () => `lose-redis-key(k${this.key})`;
}

/** A Redis restart without persistence: every record of the run and the fence counter are gone. */
class FlushRedisCommand implements Cmd {
  check = () => true;
  async run(state: RunState, sys: LifecycleSystem): Promise<void> {
    await sys.flushRedis();
    flushed.add(state);
    state.model.flushedRedis();
  }
  toString = () => 'flush-redis';
}

function faultArb(store: DedupStoreMode): fc.Arbitrary<StepFault | undefined> {
  const redis: fc.Arbitrary<StepFault>[] = [
    fc.constant({ on: 'redis', fault: { kind: 'drop-request' } }),
    fc.constant({ on: 'redis', fault: { kind: 'drop-reply' } }),
    fc.constant({ on: 'redis', fault: { kind: 'delay-reply', ms: REDIS_TIMEOUT_MS * 2 } }),
    fc.constant({ on: 'redis', fault: { kind: 'delay-request', ms: REDIS_TIMEOUT_MS * 2 } }),
    fc.constant({ on: 'redis', fault: { kind: 'refuse', ms: 200 } }),
  ];
  const postgres: fc.Arbitrary<StepFault>[] = [
    fc.constant({ on: 'postgres', fault: { kind: 'drop-request' } }),
    fc.constant({ on: 'postgres', fault: { kind: 'drop-reply' } }),
    fc.constant({ on: 'postgres', fault: { kind: 'delay-reply', ms: 200 } }),
    fc.constant({ on: 'postgres', fault: { kind: 'refuse', ms: 200 } }),
    fc.constant({ on: 'pg-terminate' }),
  ];
  const faults = [...(store !== 'postgres' ? redis : []), ...(store !== 'redis' ? postgres : [])];
  return fc.oneof(
    { arbitrary: fc.constant(undefined), weight: 3 * faults.length },
    ...faults.map((arbitrary) => ({ arbitrary, weight: 1 })),
  );
}

/** The command arbitraries for `store` with `owners` workers. */
export function lifecycleCommands(store: DedupStoreMode, owners: number): fc.Arbitrary<Iterable<Cmd>> {
  const owner = fc.nat({ max: owners - 1 });
  const key = fc.nat({ max: KEYS.length - 1 });
  const pick = fc.oneof(
    { arbitrary: fc.constant(0), weight: 3 },
    { arbitrary: fc.nat({ max: 2 }), weight: 1 },
  );
  const fault = faultArb(store);
  const claim = fc.tuple(owner, key, fault).map(([o, k, f]) => new ClaimCommand(o, [k], f));
  const complete = fc.tuple(owner, key, pick, fault).map(([o, k, p, f]) => new CompleteCommand(o, k, p, f));
  const release = fc.tuple(owner, key, pick, fault).map(([o, k, p, f]) => new ReleaseCommand(o, k, p, f));
  const extend = fc.tuple(owner, key, pick, fault).map(([o, k, p, f]) => new ExtendCommand(o, k, p, f));
  const expire = key.map((k) => new ExpireCommand(k));
  // fc.commands has no weights: repeating an arbitrary makes its command more frequent.
  const commands: fc.Arbitrary<Cmd>[] = [
    claim,
    claim,
    claim,
    claim,
    fc
      .tuple(owner, fc.array(key, { minLength: 2, maxLength: 3 }), fault)
      .map(([o, ks, f]) => new ClaimCommand(o, ks, f)),
    fc.tuple(key, owner, fault).map(([k, o, f]) => new RaceCommand(k, o, f)),
    fc.tuple(owner, owner, key, fault).map(([a, b, k, f]) => new CompleteVersusClaimCommand(a, b, k, f)),
    fc.tuple(owner, owner, key, fault).map(([a, b, k, f]) => new CompleteVersusClaimCommand(a, b, k, f)),
    complete,
    complete,
    complete,
    release,
    release,
    extend,
    extend,
    fc.tuple(owner, key, fc.boolean(), fault).map(([o, k, force, f]) => new ForgetCommand(o, k, force, f)),
    fc.tuple(owner, key, fault).map(([o, k, f]) => new GetCommand(o, k, f)),
    expire,
    expire,
    fc.integer({ min: 20, max: 250 }).map((ms) => new SleepCommand(ms)),
  ];
  if (store !== 'postgres') {
    commands.push(key.map((k) => new LoseKeyCommand(k)));
    commands.push(fc.constant(new FlushRedisCommand()));
  }
  return fc.commands(commands, { maxCommands: 24, size: 'large' });
}
