-- purge.lua: delete every ready and delayed item of a queue.
--
-- KEYS[1] high            list  ready HIGH ids
-- KEYS[2] normal          list  ready NORMAL ids
-- KEYS[3] delayed:high    zset  id -> eta
-- KEYS[4] delayed:normal  zset  id -> eta
-- KEYS[5] items           hash  id -> payload
-- KEYS[6] deliveries      hash  id -> delivery count of items not under lease
-- KEYS[7] leased          zset  '<id>:<deliveries>:<token>' -> lease deadline, plus '-' -> +inf
-- KEYS[8] dead            list  dead ids
--
-- Returns: the number of items deleted.
-- Invariants: leased and dead items (and their payloads) stay.
local CHUNK = 4000
local n = redis.call('LLEN', KEYS[1]) + redis.call('LLEN', KEYS[2])
  + redis.call('ZCARD', KEYS[3]) + redis.call('ZCARD', KEYS[4])
if n == 0 then
  return 0
end
if redis.call('ZCOUNT', KEYS[7], '-inf', '(+inf') == 0 and redis.call('LLEN', KEYS[8]) == 0 then
  -- Nothing else refers to items or deliveries: drop them whole.
  redis.call('DEL', KEYS[5], KEYS[6])
else
  local groups = {
    redis.call('LRANGE', KEYS[1], 0, -1),
    redis.call('LRANGE', KEYS[2], 0, -1),
    redis.call('ZRANGE', KEYS[3], 0, -1),
    redis.call('ZRANGE', KEYS[4], 0, -1),
  }
  for _, ids in ipairs(groups) do
    for i = 1, #ids, CHUNK do
      local j = math.min(i + CHUNK - 1, #ids)
      redis.call('HDEL', KEYS[5], unpack(ids, i, j))
      redis.call('HDEL', KEYS[6], unpack(ids, i, j))
    end
  end
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
return n
