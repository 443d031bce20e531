#!lua flags=allow-oom
-- dead_letter.lua: move leased entries to the dead letters with a reason and an error.
--
-- KEYS: the queue's keys (see _lib.lua)
-- ARGV[1] reason
-- ARGV[2] error text (may be empty)
-- ARGV[3..] pairs (token, slots as 'a-b,c,...')
--
-- Returns: how many entries were moved.
-- Invariants: only held entries count. A dead entry's header carries its deliveries
-- (this one included); the record under its id says why; dead_at is server TIME.
local moved, entries = settle_args(3, true)
local now = tonumber(now_text())
for _, e in ipairs(entries) do
  bury(e, earlier_deliveries(e) + 1, ARGV[1], ARGV[2], now)
end
return moved
