import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';

/**
 * A Lua script run with EVALSHA, falling back to EVAL once when Redis does not know it yet.
 * (ioredis' defineCommand would add methods to the app's shared client; this does not.)
 */
export class RedisScript {
  readonly sha: string;

  constructor(readonly lua: string) {
    this.sha = createHash('sha1').update(lua).digest('hex');
  }

  async run(
    redis: Redis | Cluster,
    keys: readonly string[],
    args: readonly (string | number)[],
  ): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return redis.eval(this.lua, keys.length, ...keys, ...args);
    }
  }
}

// Shared prologue: Redis' clock, so every worker compares leases against the same time.
const NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

/**
 * KEYS: the record keys, then the fence counter. ARGV: token, leaseMs, then (messageId,
 * payloadHash | '') per record (scope and key are read back from the record key). Returns
 * (status, value, ms, payloadHash) per key: ('claimed', fence, leaseMs, ''), ('completed',
 * resultJson | '', pttl, hash | '') or ('in-flight', '', remaining lease, hash | '').
 */
export const CLAIM_SCRIPT = new RedisScript(`
local n = #KEYS - 1
local fenceKey = KEYS[n + 1]
local token = ARGV[1]
local lease = tonumber(ARGV[2])
${NOW}
local out = {}
for i = 1, n do
  local k = KEYS[i]
  local cur = redis.call('HMGET', k, 'state', 'leaseUntil', 'result', 'attempts', 'payloadHash')
  local state = cur[1]
  if state == 'COMPLETED' then
    out[#out + 1] = 'completed'
    out[#out + 1] = cur[3] or ''
    out[#out + 1] = redis.call('PTTL', k)
    out[#out + 1] = cur[5] or ''
  elseif state == 'IN_PROGRESS' and (tonumber(cur[2]) or 0) > now then
    out[#out + 1] = 'in-flight'
    out[#out + 1] = ''
    out[#out + 1] = tonumber(cur[2]) - now
    out[#out + 1] = cur[5] or ''
  else
    local attempts = 1
    if state then
      attempts = (tonumber(cur[4]) or 0) + 1
      redis.call('DEL', k)
    end
    local fence = redis.call('INCR', fenceKey)
    redis.call('HSET', k, 'state', 'IN_PROGRESS', 'token', token, 'fence', fence, 'messageId', ARGV[1 + 2 * i],
      'leaseUntil', now + lease, 'attempts', attempts, 'createdAt', now, 'updatedAt', now)
    if ARGV[2 + 2 * i] ~= '' then
      redis.call('HSET', k, 'payloadHash', ARGV[2 + 2 * i])
    end
    redis.call('PEXPIRE', k, lease)
    out[#out + 1] = 'claimed'
    out[#out + 1] = tostring(fence)
    out[#out + 1] = lease
    out[#out + 1] = ''
  end
end
return out
`);

/**
 * KEYS: the record keys, then the fence counter. ARGV: ttlMs, then (token, resultJson | '',
 * messageId, payloadHash | '') per record: the completed record keeps that hash (a backfill passes
 * the durable record's). Completes a key that is absent or held by the same token.
 * Returns 1 (completed) or 0 (stale) per key.
 */
export const COMPLETE_SCRIPT = new RedisScript(`
local n = #KEYS - 1
local fenceKey = KEYS[n + 1]
local ttl = tonumber(ARGV[1])
${NOW}
local out = {}
for i = 1, n do
  local k = KEYS[i]
  local b = 1 + (i - 1) * 4
  local token = ARGV[b + 1]
  local owner = redis.call('HGET', k, 'token')
  if (not owner) or owner == token then
    if not owner then
      redis.call('HSET', k, 'fence', redis.call('INCR', fenceKey), 'attempts', 1, 'createdAt', now)
    end
    -- The first write must be one Redis refuses under OOM: once a script wrote, Redis lets it go on.
    redis.call('HSET', k, 'state', 'COMPLETED', 'token', token, 'messageId', ARGV[b + 3], 'updatedAt', now)
    if ARGV[b + 4] ~= '' then
      redis.call('HSET', k, 'payloadHash', ARGV[b + 4])
    else
      redis.call('HDEL', k, 'payloadHash')
    end
    redis.call('HDEL', k, 'leaseUntil')
    if ARGV[b + 2] ~= '' then
      redis.call('HSET', k, 'result', ARGV[b + 2])
    else
      redis.call('HDEL', k, 'result')
    end
    redis.call('PEXPIRE', k, ttl)
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
`);

/**
 * KEYS: the record keys. ARGV: absentIsReleased (1 on a retry, whose earlier attempt may have
 * deleted the key), then one token per key. Deletes IN_PROGRESS records of that token; 1/0 per key.
 */
export const RELEASE_SCRIPT = new RedisScript(`
local absentIsReleased = ARGV[1] == '1'
local out = {}
for i = 1, #KEYS do
  local cur = redis.call('HMGET', KEYS[i], 'token', 'state')
  if cur[1] == ARGV[i + 1] and cur[2] == 'IN_PROGRESS' then
    redis.call('DEL', KEYS[i])
    out[i] = 1
  elseif absentIsReleased and not cur[2] then
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
`);

/**
 * KEYS: the record key. ARGV: force (1/0). Deletes the record, except (without force) a live
 * IN_PROGRESS one. Returns 'forgotten', 'absent' or 'in-progress'.
 */
export const FORGET_SCRIPT = new RedisScript(`
${NOW}
local cur = redis.call('HMGET', KEYS[1], 'state', 'leaseUntil')
if not cur[1] then
  return 'absent'
end
if ARGV[1] ~= '1' and cur[1] == 'IN_PROGRESS' and (tonumber(cur[2]) or 0) > now then
  return 'in-progress'
end
redis.call('DEL', KEYS[1])
return 'forgotten'
`);

/**
 * KEYS: the record keys, then the fence counter. ARGV: leaseMs, then (token, messageId, payloadHash | '')
 * per record. Renews a lease of the same token, or re-takes a key that expired meanwhile (with its
 * fingerprint); 1/0 per key.
 */
export const EXTEND_SCRIPT = new RedisScript(`
local n = #KEYS - 1
local fenceKey = KEYS[n + 1]
local lease = tonumber(ARGV[1])
${NOW}
local out = {}
for i = 1, n do
  local k = KEYS[i]
  local b = 1 + (i - 1) * 3
  local token = ARGV[b + 1]
  local cur = redis.call('HMGET', k, 'token', 'state')
  if cur[1] == token and cur[2] == 'IN_PROGRESS' then
    redis.call('HSET', k, 'leaseUntil', now + lease, 'updatedAt', now)
    redis.call('PEXPIRE', k, lease)
    out[i] = 1
  elseif not cur[1] then
    redis.call('HSET', k, 'state', 'IN_PROGRESS', 'token', token, 'fence', redis.call('INCR', fenceKey),
      'messageId', ARGV[b + 2], 'leaseUntil', now + lease, 'attempts', 1, 'createdAt', now, 'updatedAt', now)
    if ARGV[b + 3] ~= '' then
      redis.call('HSET', k, 'payloadHash', ARGV[b + 3])
    end
    redis.call('PEXPIRE', k, lease)
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
`);
