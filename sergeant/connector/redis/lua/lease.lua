-- lease.lua: hand out up to ARGV[1] ready items under a lease.
--
-- KEYS[1] high            list  ready HIGH ids
-- KEYS[2] normal          list  ready NORMAL ids
-- KEYS[3] delayed:high    zset  id -> eta
-- KEYS[4] delayed:normal  zset  id -> eta
-- KEYS[5] items           hash  id -> payload
-- KEYS[6] deliveries      hash  id -> delivery count of items not under lease
-- KEYS[7] leased          zset  '<id>:<deliveries>:<token>' -> lease deadline, plus '-' -> +inf
-- KEYS[8] wake            list  wake tokens for blocked leases
-- KEYS[9] leases          string  last fencing token handed out (INCR per leasing call)
-- ARGV[1] count: the most items to hand out
-- ARGV[2] lease_seconds
--
-- Returns: {-1, token, id1, payload1, deliveries1, id2, ...} when items were handed
-- out; otherwise {wait_ms}: -1 when nothing is delayed, else the milliseconds (at
-- least 1) until the earliest delayed item is due.
-- Invariants: same order as pop.lua, with the same promotion of due delayed ids.
-- Each item's delivery count goes up by one. Every item of one call shares one
-- fencing token, a fresh value of the never-reset KEYS[9] counter, so a token never
-- repeats for an item (release and requeue_dead lower or reset the count, never the
-- token). While leased, the count and the token live in the leased member
-- '<id>:<deliveries>:<token>' (not in deliveries). The deadline is
-- server TIME + lease_seconds. When nothing is ready the wake tokens are stale
-- (every earlier push has been consumed) and are deleted. The member '-' with score
-- +inf stays in leased for good: it keeps the key alive, since re-creating the zset
-- from empty costs about four times more per insert than adding to a live one.
local CHUNK = 2000
local count = tonumber(ARGV[1])
local t = redis.call('TIME')
local now_text = t[1] .. '.' .. string.format('%06d', t[2])
local now = tonumber(now_text)
local limit = math.max(count, 1000)

local function promote(zset, list)
  local due = redis.call('ZRANGEBYSCORE', zset, '-inf', now_text, 'LIMIT', 0, limit)
  for i = 1, #due, CHUNK do
    local j = math.min(i + CHUNK - 1, #due)
    redis.call('ZREM', zset, unpack(due, i, j))
    redis.call('RPUSH', list, unpack(due, i, j))
  end
end

local function next_due_ms()
  local wait = -1
  for _, zset in ipairs({KEYS[3], KEYS[4]}) do
    local head = redis.call('ZRANGE', zset, 0, 0, 'WITHSCORES')
    if head[2] then
      local ms = math.max(1, math.ceil((tonumber(head[2]) - now) * 1000))
      if wait < 0 or ms < wait then
        wait = ms
      end
    end
  end
  return wait
end

promote(KEYS[3], KEYS[1])
promote(KEYS[4], KEYS[2])
local ids = redis.call('LPOP', KEYS[1], count) or {}
local high = #ids
if high < count then
  local more = redis.call('LPOP', KEYS[2], count - high) or {}
  for k = 1, #more do
    ids[high + k] = more[k]
  end
end
if #ids == 0 then
  redis.call('DEL', KEYS[8])
  return {next_due_ms()}
end

local deadline = string.format('%.6f', now + tonumber(ARGV[2]))
local token = redis.call('INCR', KEYS[9])
-- Most items were never delivered: skip reading counts when none are stored.
local any_counts = redis.call('HLEN', KEYS[6]) > 0
local out, o = {-1, token}, 2
for i = 1, #ids, CHUNK do
  local j = math.min(i + CHUNK - 1, #ids)
  local payloads = redis.call('HMGET', KEYS[5], unpack(ids, i, j))
  local counts = any_counts and redis.call('HMGET', KEYS[6], unpack(ids, i, j)) or {}
  local scored, p, counted = {'+inf', '-'}, 2, false
  for k = 1, j - i + 1 do
    local payload = payloads[k]
    if payload then
      local id = ids[i + k - 1]
      local d = 1
      if counts[k] then
        d = tonumber(counts[k]) + 1
        counted = true
      end
      out[o + 1], out[o + 2], out[o + 3] = id, payload, d
      o = o + 3
      scored[p + 1], scored[p + 2] = deadline, id .. ':' .. d .. ':' .. token
      p = p + 2
    end
  end
  redis.call('ZADD', KEYS[7], unpack(scored))
  if counted then
    redis.call('HDEL', KEYS[6], unpack(ids, i, j))
  end
end
return out
