#!lua flags=allow-oom
-- remove_waiting.lua: remove the given entries, each only if it is still ready or delayed.
--
-- KEYS: the queue's keys (see _lib.lua)
-- ARGV: whole entries (header and payload), as ``waiting`` read them
--
-- Returns: how many were removed.
-- Invariants: an entry that is no longer ready or delayed (leased, dead, removed) is
-- left as it is; each entry is looked for in its own priority's ready list, then in
-- its delayed set. Removed entries free their unique keys.
local removed = {}
for _, e in ipairs(ARGV) do
  local high = is_high(e)
  local gone = redis.call('LREM', high and HIGH or NORMAL, 1, e)
  if gone == 0 then
    gone = redis.call('ZREM', high and DELAYED_HIGH or DELAYED_NORMAL, e)
  end
  local g = gone == 0 and has_groups() and group_of(e)
  if g then
    gone = redis.call('LREM', group_list(g, high), 1, e)
    if gone > 0 and group_took(g, high, -1) <= 0 then
      redis.call('LREM', GROUP_RING, 1, g)
    end
  end
  if gone > 0 then
    removed[#removed + 1] = e
  end
end
group_forget(removed)
free(removed)
return #removed
