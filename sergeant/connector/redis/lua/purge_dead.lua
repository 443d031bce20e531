#!lua flags=allow-oom
-- purge_dead.lua: delete every dead entry of a queue.
--
-- KEYS: the queue's keys (see _lib.lua)
--
-- Returns: how many entries were deleted.
if has_groups() then
  group_forget(redis.call('LRANGE', DEAD, 0, -1))
end
local n = redis.call('LLEN', DEAD)
redis.call('DEL', DEAD, DEAD_INFO)
return n
