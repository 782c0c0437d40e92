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

// Redis' clock, taken once per script and only for records of an older version (their lease end
// is a field; today's records expire with their lease). Creation and update times come from the
// caller's clock (ARGV), as they are only shown, never compared.
const CLOCK = `
local now
local function clock()
  if not now then
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  return now
end
`;

// The record format (see redis-record.codec.ts):
//   S|token|fence|attempts|createdAt|updatedAt|hash|<bytes>:messageId|result
// Numbers are integers below 1e14, which Lua's concatenation prints exactly.
const RECORD = `
local function record(state, token, fence, attempts, createdAt, updatedAt, hash, messageId, result)
  return state .. '|' .. token .. '|' .. fence .. '|' .. attempts .. '|' .. createdAt .. '|' .. updatedAt .. '|' ..
    hash .. '|' .. #messageId .. ':' .. messageId .. '|' .. result
end
-- A record of an older version is a hash: GET answers WRONGTYPE, returned by pcall as a table.
local function read(k)
  return redis.pcall('GET', k)
end
`;

/**
 * KEYS: the record keys, then the fence counter. ARGV: token, leaseMs, now (the caller's epoch
 * ms), then (messageId, payloadHash | '') per record (scope and key are read back from the record
 * key). Returns (status, value, ms, payloadHash) per key: ('claimed', fence, leaseMs, ''), ('record', the
 * stored string, its pttl, '') for an existing record (in flight while IN_PROGRESS: it expires
 * with its lease), and for a record of an older version (a hash) ('completed', resultJson | '',
 * pttl, hash | '') or ('in-flight', '', remaining lease, hash | '').
 */
export const CLAIM_SCRIPT = new RedisScript(`
local n = #KEYS - 1
local fenceKey = KEYS[n + 1]
local token = ARGV[1]
local lease = tonumber(ARGV[2])
${CLOCK}
${RECORD}
local out = {}
for i = 1, n do
  local k = KEYS[i]
  local cur = read(k)
  local attempts = 1
  local answered = false
  if type(cur) == 'table' then
    local h = redis.call('HMGET', k, 'state', 'leaseUntil', 'result', 'attempts', 'payloadHash')
    if h[1] == 'COMPLETED' then
      out[#out + 1] = 'completed'
      out[#out + 1] = h[3] or ''
      out[#out + 1] = redis.call('PTTL', k)
      out[#out + 1] = h[5] or ''
      answered = true
    elseif h[1] == 'IN_PROGRESS' and (tonumber(h[2]) or 0) > clock() then
      out[#out + 1] = 'in-flight'
      out[#out + 1] = ''
      out[#out + 1] = tonumber(h[2]) - now
      out[#out + 1] = h[5] or ''
      answered = true
    else
      attempts = (tonumber(h[4]) or 0) + 1
      redis.call('DEL', k)
    end
  elseif cur then
    out[#out + 1] = 'record'
    out[#out + 1] = cur
    out[#out + 1] = redis.call('PTTL', k)
    out[#out + 1] = ''
    answered = true
  end
  if not answered then
    local fence = redis.call('INCR', fenceKey)
    redis.call('SET', k, record('I', token, fence, attempts, ARGV[3], ARGV[3], ARGV[3 + 2 * i], ARGV[2 + 2 * i], ''),
      'PX', lease)
    out[#out + 1] = 'claimed'
    out[#out + 1] = tostring(fence)
    out[#out + 1] = lease
    out[#out + 1] = ''
  end
end
return out
`);

/**
 * KEYS: the record keys, then the fence counter. ARGV: ttlMs, now (the caller's epoch ms), then
 * (token, resultJson | '', messageId, payloadHash | '') per record: the completed record keeps
 * that hash (a backfill passes the durable record's). Completes a key that is absent or held by
 * the same token (IN_PROGRESS, or COMPLETED by a retried completion); a record of an older version
 * is someone else's. Returns 1 (completed) or 0 (stale) per key.
 */
export const COMPLETE_SCRIPT = new RedisScript(`
local n = #KEYS - 1
local fenceKey = KEYS[n + 1]
local ttl = tonumber(ARGV[1])
local now = ARGV[2]
${RECORD}
local out = {}
for i = 1, n do
  local k = KEYS[i]
  local b = 2 + (i - 1) * 4
  local token = ARGV[b + 1]
  local cur = read(k)
  local fence, attempts, createdAt
  if type(cur) == 'table' then
    fence = nil
  elseif cur then
    local owner, f, a, c = string.match(cur, '^[IC]|([^|]*)|(%d+)|(%d+)|(%d+)|')
    if owner == token then
      fence, attempts, createdAt = f, a, c
    end
  else
    -- The first write (this INCR, or the SET) must be one Redis refuses under OOM: once a script
    -- wrote, Redis lets it go on.
    fence, attempts, createdAt = redis.call('INCR', fenceKey), 1, now
  end
  if fence then
    redis.call('SET', k, record('C', token, fence, attempts, createdAt, now, ARGV[b + 4], ARGV[b + 3], ARGV[b + 2]),
      'PX', ttl)
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
${RECORD}
local out = {}
for i = 1, #KEYS do
  local cur = read(KEYS[i])
  local mine = 'I|' .. ARGV[i + 1] .. '|'
  if type(cur) == 'string' and string.sub(cur, 1, #mine) == mine then
    redis.call('DEL', KEYS[i])
    out[i] = 1
  elseif absentIsReleased and not cur then
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
${CLOCK}
${RECORD}
local cur = read(KEYS[1])
if not cur then
  return 'absent'
end
local live
if type(cur) == 'table' then
  local h = redis.call('HMGET', KEYS[1], 'state', 'leaseUntil')
  live = h[1] == 'IN_PROGRESS' and (tonumber(h[2]) or 0) > clock()
else
  live = string.sub(cur, 1, 2) == 'I|'
end
if ARGV[1] ~= '1' and live then
  return 'in-progress'
end
redis.call('DEL', KEYS[1])
return 'forgotten'
`);

/**
 * KEYS: the record keys, then the fence counter. ARGV: leaseMs, now (the caller's epoch ms), then
 * (token, messageId, payloadHash | '') per record. Renews a lease of the same token (the key's TTL
 * is the lease), or re-takes a key that expired meanwhile (with its fingerprint); 1/0 per key.
 */
export const EXTEND_SCRIPT = new RedisScript(`
local n = #KEYS - 1
local fenceKey = KEYS[n + 1]
local lease = tonumber(ARGV[1])
local now = ARGV[2]
${RECORD}
local out = {}
for i = 1, n do
  local k = KEYS[i]
  local b = 2 + (i - 1) * 3
  local token = ARGV[b + 1]
  local cur = read(k)
  local mine = 'I|' .. token .. '|'
  if type(cur) == 'string' and string.sub(cur, 1, #mine) == mine then
    redis.call('PEXPIRE', k, lease)
    out[i] = 1
  elseif not cur then
    local fence = redis.call('INCR', fenceKey)
    redis.call('SET', k, record('I', token, fence, 1, now, now, ARGV[b + 3], ARGV[b + 2], ''), 'PX', lease)
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
`);
