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
  if gone > 0 then
    removed[#removed + 1] = e
  end
end
free(removed)
return #removed
