import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { normalizeAddress } from '../headers/mail-message.builder';
import { MAIL_OPTIONS, type ResolvedMailOptions } from '../mail.options';
import { SesTransport } from '../ses/ses.transport';

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
 * KEYS: global, recipient…  ARGV: maxWaitMs, globalIntervalMs, globalBurst, recipientIntervalMs, recipientBurst
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
  if tat < now then tat = now end
  tats[i] = tat
  local allowAt = tat - (burst - 1) * interval
  if allowAt > sendAt then sendAt = allowAt end
end
local wait = sendAt - now
if wait > maxWait then return {0, wait, sendAt} end
for i, key in ipairs(KEYS) do
  local interval = tonumber(i == 1 and ARGV[2] or ARGV[4])
  local tat = tats[i]
  if sendAt > tat then tat = sendAt end
  tat = tat + interval
  redis.call('SET', key, tostring(tat), 'PX', tat - now + 1000)
end
return {1, wait, sendAt}
`;

const RATE_TTL_OK_MS = 3_600_000;
const RATE_TTL_FALLBACK_MS = 60_000;

/**
 * The send rate shared by every process that uses the same Redis and key prefix: the SES account
 * rate overall, and a cap per recipient. Recipients appear in keys only as hashes.
 */
@Injectable()
export class MailRateLimiter {
  private readonly logger = new Logger(MailRateLimiter.name);
  private rate?: { value: number; until: number };

  constructor(
    @Inject(MAIL_OPTIONS) private readonly options: ResolvedMailOptions,
    private readonly transport: SesTransport,
  ) {}

  /** Reserves a slot for one email to `recipients` without waiting for it. */
  async reserve(recipients: readonly string[]): Promise<RateReservation> {
    const { rateLimit, redisKeyPrefix } = this.options;
    const globalInterval = Math.ceil(1000 / (await this.maxSendRate()));
    const keys = [`${redisKeyPrefix}rate:global`];
    let recipientInterval = 0;
    let recipientBurst = 1;
    if (rateLimit.perRecipient) {
      recipientInterval = Math.ceil(rateLimit.perRecipient.windowMs / rateLimit.perRecipient.limit);
      recipientBurst = rateLimit.perRecipient.limit;
      for (const recipient of new Set(recipients.map(normalizeAddress))) {
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
    )) as [number, number, number];
    return { granted: reply[0] === 1, waitMs: Number(reply[1]), slotAt: new Date(Number(reply[2])) };
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
