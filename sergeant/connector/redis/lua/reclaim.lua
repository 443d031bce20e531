-- reclaim.lua: take back up to ARGV[2] items whose lease has expired.
--
-- KEYS[1] leased      zset  '<id>:<deliveries>:<token>' -> lease deadline
-- KEYS[2] deliveries  hash  id -> delivery count of items not under lease
-- KEYS[3] high        list  ready HIGH ids
-- KEYS[4] normal      list  ready NORMAL ids
-- KEYS[5] dead        list  dead ids, oldest first
-- KEYS[6] dead:info   hash  id -> JSON {reason, error, deliveries, dead_at}
-- KEYS[7] wake        list  wake tokens for blocked leases
-- ARGV[1] max_deliveries (0 = no bound)
-- ARGV[2] the most expired items to handle in this call
-- ARGV[3] most wake tokens to keep in KEYS[7]
--
-- Returns: {requeued, dead_lettered, expired_seen}; the caller calls again while
-- expired_seen == ARGV[2].
-- Invariants: expiry is judged on server TIME. Each expired item is handled exactly
-- once (it leaves leased here). Items with deliveries >= max_deliveries go to the
-- dead letters as 'worker died'; the others keep their count and go to the head of
-- their own priority ('H' ids to HIGH), earliest deadline first. The work per call
-- is bounded so Redis is never blocked long.
local CHUNK = 2000
local max_deliveries = tonumber(ARGV[1])
local t = redis.call('TIME')
local now_text = t[1] .. '.' .. string.format('%06d', t[2])
local now = tonumber(now_text)
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_text, 'LIMIT', 0, tonumber(ARGV[2]))
if #expired == 0 then
  return {0, 0, 0}
end

local high, normal, dead = {}, {}, 0
for i = 1, #expired, CHUNK do
  local j = math.min(i + CHUNK - 1, #expired)
  redis.call('ZREM', KEYS[1], unpack(expired, i, j))
  for k = i, j do
    local id, d = string.match(expired[k], '^(.*):(%d+):%d+$')
    d = tonumber(d)
    if max_deliveries > 0 and d >= max_deliveries then
      redis.call('RPUSH', KEYS[5], id)
      redis.call('HSET', KEYS[6], id, cjson.encode({
        reason = 'worker died', error = '', deliveries = d, dead_at = now,
      }))
      dead = dead + 1
    else
      redis.call('HSET', KEYS[2], id, d)
      if string.byte(id, 1) == 72 then -- 'H'
        high[#high + 1] = id
      else
        normal[#normal + 1] = id
      end
    end
  end
end

-- LPUSH puts its last argument first: push in reverse to keep deadline order.
local function push_front(list, ids)
  for j = #ids, 1, -CHUNK do
    local i = math.max(1, j - CHUNK + 1)
    local reversed = {}
    for k = j, i, -1 do
      reversed[#reversed + 1] = ids[k]
    end
    redis.call('LPUSH', list, unpack(reversed))
  end
end
push_front(KEYS[3], high)
push_front(KEYS[4], normal)

local requeued = #high + #normal
if requeued > 0 then
  local cap = tonumber(ARGV[3])
  local tokens = {}
  for k = 1, math.min(requeued, cap) do
    tokens[k] = '1'
  end
  redis.call('RPUSH', KEYS[7], unpack(tokens))
  redis.call('LTRIM', KEYS[7], -cap, -1)
end
return {requeued, dead, #expired}
