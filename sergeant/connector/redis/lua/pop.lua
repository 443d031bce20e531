-- pop.lua: remove and return up to ARGV[1] ready items (at-most-once, no lease).
--
-- KEYS[1] high            list  ready HIGH ids
-- KEYS[2] normal          list  ready NORMAL ids
-- KEYS[3] delayed:high    zset  id -> eta
-- KEYS[4] delayed:normal  zset  id -> eta
-- KEYS[5] items           hash  id -> payload
-- KEYS[6] deliveries      hash  id -> delivery count of items not under lease
-- ARGV[1] count: the most items to return
--
-- Returns: the payloads, HIGH before NORMAL, FIFO within a priority.
-- Invariants: due delayed ids are made ready first, in this same atomic step
-- (at most max(count, 1000) per priority, so one call stays short); every trace of
-- a popped item is deleted.
local CHUNK = 4000
local count = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = t[1] .. '.' .. string.format('%06d', t[2])
local limit = math.max(count, 1000)

local function promote(zset, list)
  local due = redis.call('ZRANGEBYSCORE', zset, '-inf', now, 'LIMIT', 0, limit)
  for i = 1, #due, CHUNK do
    local j = math.min(i + CHUNK - 1, #due)
    redis.call('ZREM', zset, unpack(due, i, j))
    redis.call('RPUSH', list, unpack(due, i, j))
  end
end

promote(KEYS[3], KEYS[1])
promote(KEYS[4], KEYS[2])
local ids = redis.call('LPOP', KEYS[1], count) or {}
if #ids < count then
  local more = redis.call('LPOP', KEYS[2], count - #ids) or {}
  for k = 1, #more do
    ids[#ids + 1] = more[k]
  end
end

-- Most items were never delivered: skip deleting counts when none are stored.
local any_counts = redis.call('HLEN', KEYS[6]) > 0
local out = {}
for i = 1, #ids, CHUNK do
  local j = math.min(i + CHUNK - 1, #ids)
  local payloads = redis.call('HMGET', KEYS[5], unpack(ids, i, j))
  for k = 1, j - i + 1 do
    if payloads[k] then
      out[#out + 1] = payloads[k]
    end
  end
  redis.call('HDEL', KEYS[5], unpack(ids, i, j))
  if any_counts then
    redis.call('HDEL', KEYS[6], unpack(ids, i, j))
  end
end
return out
