#!lua flags=allow-oom
-- requeue_dead.lua: move up to ARGV[1] dead entries (0 = all), oldest first, back to ready.
--
-- KEYS: the queue's keys (see _lib.lua)
-- ARGV[1] limit (0 = all)
-- ARGV[2] most wake tokens to keep
--
-- Returns: how many entries were requeued.
-- Invariants: they go to the tail of NORMAL as NORMAL entries, their delivery count
-- starting again from 0.
local limit = tonumber(ARGV[1])
local entries = redis.call('LRANGE', DEAD, 0, limit - 1)
if #entries == 0 then
  return 0
end
redis.call('LTRIM', DEAD, #entries, -1)
local again = {}
for k, e in ipairs(entries) do
  redis.call('HDEL', DEAD_INFO, item_id(e))
  again[k] = 'N' .. item_id(e) .. '0000' .. sub(e, 26)
end
if has_groups() then -- grouped entries go back to the tail of their group
  local plain = {}
  for _, e in ipairs(again) do
    local g = group_of(e)
    if g then group_put(g, false, {e}, false) else plain[#plain + 1] = e end
  end
  again = plain
end
for i = 1, #again, CHUNK do
  redis.call('RPUSH', NORMAL, unpack(again, i, math.min(i + CHUNK - 1, #again)))
end
wake(#entries, tonumber(ARGV[2]))
return #entries
