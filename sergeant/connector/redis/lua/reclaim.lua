#!lua flags=allow-oom
-- reclaim.lua: take back the entries of batches whose lease has expired.
--
-- KEYS: the queue's keys (see _lib.lua)
-- ARGV[1] max_deliveries (0 = no bound)
-- ARGV[2] the most entries to handle in this call (whole batches; at least one batch)
-- ARGV[3] most wake tokens to keep
--
-- Returns: {requeued, dead_lettered, more}; more is 1 when expired batches remain,
-- so the caller calls again.
-- Invariants: expiry is judged on server TIME. Each expired batch is handled exactly
-- once (its record goes here). Each entry it still held counts one more delivery
-- (written in its header); at or past max_deliveries it goes to the dead letters as
-- 'worker died', else back to the head of its own priority, batches in deadline
-- order. The work per call is bounded so Redis is never blocked long.
local max_deliveries = tonumber(ARGV[1])
local budget = tonumber(ARGV[2])
local now = now_text()
local expired = redis.call('ZRANGEBYSCORE', LEASED, '-inf', now, 'LIMIT', 0, budget)
local requeued, dead, handled, batches = {}, 0, 0, 0
for _, token in ipairs(expired) do
  if batches > 0 and handled >= budget then
    break
  end
  batches = batches + 1
  local _, entries = settle(token, '1-' .. 1000000000, true)
  redis.call('ZREM', LEASED, token) -- also when the record was already gone
  handled = handled + #entries
  for _, e in ipairs(entries) do
    local deliveries = earlier_deliveries(e) + 1
    if max_deliveries > 0 and deliveries >= max_deliveries then
      bury(e, deliveries, 'worker died', '', tonumber(now))
      dead = dead + 1
    else
      requeued[#requeued + 1] = with_deliveries(e, deliveries)
    end
  end
end
push_front(requeued)
wake(#requeued, tonumber(ARGV[3]))
return {#requeued, dead, (batches < #expired or #expired >= budget) and 1 or 0}
