#!lua flags=allow-oom
-- pop.lua: remove and return up to ARGV[1] ready entries (at-most-once, no lease).
--
-- KEYS: the queue's keys (see _lib.lua)
-- ARGV[1] count: the most entries to return
--
-- Returns: the entries, HIGH before NORMAL, FIFO within a priority.
-- Invariants: due delayed entries are made ready first, in this same atomic step
-- (at most max(count, 1000) per priority, so one call stays short). Popped entries
-- free their unique keys.
local count = tonumber(ARGV[1])
local now = now_text()
promote(now, math.max(count, 1000))
if has_groups() and redis.call('EXISTS', GROUP_RING) == 1 then
  local popped = ring_take(count, nil, tonumber(now))
  group_forget(popped)
  free(popped)
  return popped
end
local entries = redis.call('LPOP', HIGH, count) or {}
if #entries == 0 then
  entries = redis.call('LPOP', NORMAL, count) or {} -- the usual case: no copy
elseif #entries < count then
  local more = redis.call('LPOP', NORMAL, count - #entries) or {}
  for k = 1, #more do
    entries[#entries + 1] = more[k]
  end
end
free(entries) -- popped is settled: at most once
return entries
