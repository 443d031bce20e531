-- length.lua: count the ready entries of a queue, plus the not-yet-due delayed ones if asked.
--
-- KEYS: the queue's keys (see _lib.lua)
-- ARGV[1] '1' to include not-yet-due delayed entries, '0' otherwise
--
-- Returns: the count.
-- Invariants: a delayed entry already due counts as ready (the next pop or lease
-- would hand it out), judged on server TIME.
local n = redis.call('LLEN', HIGH) + redis.call('LLEN', NORMAL)
for _, v in ipairs(redis.call('HMGET', GROUP_STATE, '#H', '#N')) do
  n = n + (tonumber(v) or 0) -- ready grouped entries
end
if ARGV[1] == '1' then
  return n + redis.call('ZCARD', DELAYED_HIGH) + redis.call('ZCARD', DELAYED_NORMAL)
end
local now = now_text()
return n + redis.call('ZCOUNT', DELAYED_HIGH, '-inf', now)
  + redis.call('ZCOUNT', DELAYED_NORMAL, '-inf', now)
