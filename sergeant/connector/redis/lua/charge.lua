#!lua flags=allow-oom
-- charge.lua: give back leased entries whose run ended their worker, counting it.
--
-- KEYS: the queue's keys (see _lib.lua)
-- ARGV[1] max_deliveries (0 = no bound)
-- ARGV[2] reason, ARGV[3] error text: for the entries that reach the bound
-- ARGV[4] most wake tokens to keep
-- ARGV[5..] pairs (token, slots as 'a-b,c,...')
--
-- Returns: {requeued, dead_lettered}.
-- Invariants: only held entries count. Each counts this delivery for good (written in
-- its header); at or past max_deliveries it goes to the dead letters with the reason,
-- else back to the head of its own priority, in the order given.
local max_deliveries = tonumber(ARGV[1])
local _, entries = settle_args(5, true)
local now = tonumber(now_text())
local requeued, dead = {}, 0
for _, e in ipairs(entries) do
  local deliveries = earlier_deliveries(e) + 1
  if max_deliveries > 0 and deliveries >= max_deliveries then
    bury(e, deliveries, ARGV[2], ARGV[3], now)
    dead = dead + 1
  else
    requeued[#requeued + 1] = with_deliveries(e, deliveries)
  end
end
give_back(requeued, tonumber(ARGV[4]))
return {#requeued, dead}
