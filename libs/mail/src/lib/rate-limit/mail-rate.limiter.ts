import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { addressKey } from '../address/mail-address';
import { MAIL_OPTIONS, type ResolvedMailOptions } from '../mail.options';
import { SesTransport } from '../ses/ses.transport';
import {
  currentLocalFallback,
  type LocalFallbackBudget,
  recipientCapApplies,
  redisCall,
} from './local-fallback.budget';

/** A slot granted (or refused) by the shared limiter. Times are on the Redis clock. */
export interface RateReservation {
  granted: boolean;
  /** How long to wait before sending (when granted), or the wait that was refused. */
  waitMs: number;
  slotAt: Date;
}

/**
 * GCRA over several keys at once (the global key, then one per recipient). Each key holds its
 * theoretical arrival time; a request goes at the latest time every key allows and, when that is
 * within maxWait, advances them all. Redis TIME is the one clock all processes share.
 * KEYS: global, recipient…  ARGV: maxWaitMs, globalIntervalMs, globalBurst, recipientIntervalMs,
 * recipientBurst, globalFloor. The floor is the global arrival time this process last saw: after
 * Redis lost its data (restart without persistence, failover) the global key starts from it again
 * (capped at now + maxWait) instead of from now. Returns {granted, wait, sendAt, globalTat}.
 */
const RESERVE_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local maxWait = tonumber(ARGV[1])
local sendAt = now
local tats = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(i == 1 and ARGV[2] or ARGV[4])
  local burst = tonumber(i == 1 and ARGV[3] or ARGV[5])
  local tat = tonumber(redis.call('GET', key) or now)
  if i == 1 then
    local floor = math.min(tonumber(ARGV[6]), now + maxWait)
    if tat < floor then tat = floor end
  end
  if tat < now then tat = now end
  tats[i] = tat
  local allowAt = tat - (burst - 1) * interval
  if allowAt > sendAt then sendAt = allowAt end
end
local wait = sendAt - now
if wait > maxWait then return {0, wait, sendAt, tats[1]} end
for i, key in ipairs(KEYS) do
  local interval = tonumber(i == 1 and ARGV[2] or ARGV[4])
  local tat = tats[i]
  if sendAt > tat then tat = sendAt end
  tat = tat + interval
  tats[i] = tat
  redis.call('SET', key, tostring(tat), 'PX', tat - now + 1000)
end
return {1, wait, sendAt, tats[1]}
`;

const RATE_TTL_OK_MS = 3_600_000;
const RATE_TTL_FALLBACK_MS = 60_000;

/**
 * The send rate shared by every process that uses the same Redis and key prefix: the SES account
 * rate overall, and a cap per recipient (skipped inside `withoutRecipientCap`: admin error mail,
 * which has its own budget). Recipients appear in keys only as hashes.
 */
@Injectable()
export class MailRateLimiter {
  private readonly logger = new Logger(MailRateLimiter.name);
  private rate?: { value: number; until: number };
  /** Highest global arrival time (Redis clock, ms) this process was told: restores the key after Redis lost it. */
  private globalFloor = 0;
  /** Send times granted by local fallback budgets (this process), oldest first. */
  private readonly localSends: number[] = [];
  private localNext = 0;

  constructor(
    @Inject(MAIL_OPTIONS) private readonly options: ResolvedMailOptions,
    private readonly transport: SesTransport,
  ) {}

  /**
   * Reserves a slot for one email to `recipients` without waiting for it. Rejects when Redis is
   * disconnected or does not answer within `REDIS_CALL_TIMEOUT_MS` (the send is then recorded
   * `failed`, retryable), unless the call runs inside `withLocalRateFallback`, which then grants from an
   * in-process budget.
   */
  async reserve(recipients: readonly string[]): Promise<RateReservation> {
    const globalInterval = Math.ceil(1000 / (await this.maxSendRate()));
    try {
      return await redisCall(this.options.redis, () => this.reserveShared(recipients, globalInterval));
    } catch (error) {
      const budget = currentLocalFallback();
      if (!budget) throw error;
      const reservation = this.reserveLocal(budget, globalInterval);
      this.logger.warn({
        msg: 'shared rate limiter unavailable; using the in-process fallback budget',
        granted: reservation.granted,
        limit: budget.limit,
        windowMs: budget.windowMs,
        error: (error as Error).message,
      });
      return reservation;
    }
  }

  private async reserveShared(
    recipients: readonly string[],
    globalInterval: number,
  ): Promise<RateReservation> {
    const { rateLimit, redisKeyPrefix } = this.options;
    const keys = [`${redisKeyPrefix}rate:global`];
    let recipientInterval = 0;
    let recipientBurst = 1;
    if (rateLimit.perRecipient && recipientCapApplies()) {
      recipientInterval = Math.ceil(rateLimit.perRecipient.windowMs / rateLimit.perRecipient.limit);
      recipientBurst = rateLimit.perRecipient.limit;
      for (const recipient of new Set(recipients.map(addressKey))) {
        keys.push(
          `${redisKeyPrefix}rate:rcpt:${createHash('sha256').update(recipient).digest('hex').slice(0, 32)}`,
        );
      }
    }
    const reply = (await this.options.redis.eval(
      RESERVE_SCRIPT,
      keys.length,
      ...keys,
      rateLimit.maxWaitMs,
      globalInterval,
      rateLimit.burst,
      recipientInterval,
      recipientBurst,
      this.globalFloor,
    )) as [number, number, number, number];
    this.globalFloor = Math.max(this.globalFloor, Number(reply[3]));
    return { granted: reply[0] === 1, waitMs: Number(reply[1]), slotAt: new Date(Number(reply[2])) };
  }

  /** In-process GCRA at the global rate, plus at most `budget.limit` grants per window (local clock). */
  private reserveLocal(budget: LocalFallbackBudget, globalInterval: number): RateReservation {
    const now = Date.now();
    while (this.localSends.length > 0 && this.localSends[0] <= now - budget.windowMs) this.localSends.shift();
    const sendAt = Math.max(now, this.localNext);
    const waitMs = sendAt - now;
    if (this.localSends.length >= budget.limit || waitMs > this.options.rateLimit.maxWaitMs) {
      return { granted: false, waitMs, slotAt: new Date(sendAt) };
    }
    this.localSends.push(sendAt);
    this.localNext = sendAt + globalInterval;
    return { granted: true, waitMs, slotAt: new Date(sendAt) };
  }

  /** Reserves a slot and waits for it; resolves the refused reservation when the wait would exceed `maxWaitMs`. */
  async acquire(recipients: readonly string[]): Promise<RateReservation> {
    const reservation = await this.reserve(recipients);
    if (reservation.granted && reservation.waitMs > 0) await sleep(reservation.waitMs);
    return reservation;
  }

  /** Emails per second: configured, else the account's MaxSendRate (refreshed hourly), else the fallback. */
  async maxSendRate(): Promise<number> {
    const { maxSendRate, fallbackMaxSendRate } = this.options.rateLimit;
    if (maxSendRate) return maxSendRate;
    if (this.rate && this.rate.until > Date.now()) return this.rate.value;
    try {
      const accountRate = await this.transport.getMaxSendRate();
      this.rate = { value: accountRate ?? fallbackMaxSendRate, until: Date.now() + RATE_TTL_OK_MS };
    } catch (error) {
      this.logger.warn({
        msg: 'SES GetAccount failed; using the fallback send rate',
        fallbackMaxSendRate,
        error: (error as Error).name,
      });
      this.rate = { value: fallbackMaxSendRate, until: Date.now() + RATE_TTL_FALLBACK_MS };
    }
    return this.rate.value;
  }
}
