#!lua flags=allow-oom
-- purge.lua: delete every ready and delayed entry of a queue.
--
-- KEYS: the queue's keys (see _lib.lua)
--
-- Returns: the number of entries deleted.
-- Invariants: leased and dead entries stay; the deleted ones free their unique keys.
if has_unique() then
  for _, list in ipairs({HIGH, NORMAL}) do
    free(redis.call('LRANGE', list, 0, -1))
  end
  for _, zset in ipairs({DELAYED_HIGH, DELAYED_NORMAL}) do
    free(redis.call('ZRANGE', zset, 0, -1))
  end
end
local grouped = 0
if has_groups() then
  for _, zset in ipairs({DELAYED_HIGH, DELAYED_NORMAL}) do
    group_forget(redis.call('ZRANGE', zset, 0, -1))
  end
  for _, g in ipairs(redis.call('LRANGE', GROUP_RING, 0, -1)) do
    if g ~= '' then
      for _, high in ipairs({true, false}) do
        local list = group_list(g, high)
        local some = redis.call('LRANGE', list, 0, -1)
        group_forget(some)
        free(some)
        grouped = grouped + #some
        redis.call('DEL', list)
      end
      redis.call('HDEL', GROUP_STATE, 'r:' .. g)
    end
  end
  redis.call('HDEL', GROUP_STATE, '#H', '#N')
  redis.call('DEL', GROUP_RING)
end
local n = grouped + redis.call('LLEN', HIGH) + redis.call('LLEN', NORMAL)
  + redis.call('ZCARD', DELAYED_HIGH) + redis.call('ZCARD', DELAYED_NORMAL)
redis.call('DEL', HIGH, NORMAL, DELAYED_HIGH, DELAYED_NORMAL)
return n
