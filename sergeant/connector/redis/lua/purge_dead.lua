-- purge_dead.lua: delete every dead item of a queue.
--
-- KEYS[1] dead        list  dead ids
-- KEYS[2] dead:info   hash  id -> JSON record
-- KEYS[3] items       hash  id -> payload
-- KEYS[4] deliveries  hash  id -> delivery count of items not under lease
--
-- Returns: how many items were deleted.
local CHUNK = 4000
local ids = redis.call('LRANGE', KEYS[1], 0, -1)
for i = 1, #ids, CHUNK do
  local j = math.min(i + CHUNK - 1, #ids)
  redis.call('HDEL', KEYS[3], unpack(ids, i, j))
  redis.call('HDEL', KEYS[4], unpack(ids, i, j))
end
redis.call('DEL', KEYS[1], KEYS[2])
return #ids
