-- requeue_dead.lua: move up to ARGV[1] dead items (0 = all), oldest first, back to ready.
--
-- KEYS[1] dead        list  dead ids, oldest first
-- KEYS[2] dead:info   hash  id -> JSON record
-- KEYS[3] deliveries  hash  id -> delivery count of items not under lease
-- KEYS[4] normal      list  ready NORMAL ids
-- KEYS[5] wake        list  wake tokens for blocked leases
-- ARGV[1] limit (0 = all)
-- ARGV[2] most wake tokens to keep in KEYS[5]
--
-- Returns: how many items were requeued.
-- Invariants: their delivery count starts again from 0; they go to the tail of NORMAL.
local CHUNK = 4000
local limit = tonumber(ARGV[1])
local ids = redis.call('LRANGE', KEYS[1], 0, limit - 1)
if #ids == 0 then
  return 0
end
redis.call('LTRIM', KEYS[1], #ids, -1)
for i = 1, #ids, CHUNK do
  local j = math.min(i + CHUNK - 1, #ids)
  redis.call('HDEL', KEYS[2], unpack(ids, i, j))
  redis.call('HDEL', KEYS[3], unpack(ids, i, j))
  redis.call('RPUSH', KEYS[4], unpack(ids, i, j))
end
local cap = tonumber(ARGV[2])
local tokens = {}
for k = 1, math.min(#ids, cap) do
  tokens[k] = '1'
end
redis.call('RPUSH', KEYS[5], unpack(tokens))
redis.call('LTRIM', KEYS[5], -cap, -1)
return #ids
