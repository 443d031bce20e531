#!lua flags=allow-oom
-- purge.lua: delete every ready and delayed entry of a queue.
--
-- KEYS: the queue's keys (see _lib.lua)
--
-- Returns: the number of entries deleted.
-- Invariants: leased and dead entries stay.
local n = redis.call('LLEN', HIGH) + redis.call('LLEN', NORMAL)
  + redis.call('ZCARD', DELAYED_HIGH) + redis.call('ZCARD', DELAYED_NORMAL)
redis.call('DEL', HIGH, NORMAL, DELAYED_HIGH, DELAYED_NORMAL)
return n
