#!lua flags=allow-oom
-- release_owned.lua: give back every entry an owner holds, unstarted.
--
-- KEYS: the queue's keys (see _lib.lua)
-- ARGV[1] most wake tokens to keep
-- ARGV[2] owner
--
-- Returns: how many entries were released.
-- Invariants: as release.lua (headers unchanged: these deliveries are not counted),
-- batches in lease order, each batch in its own order, all at the head of their
-- priority; found through OWNED, so the batches of replies never read go back too.
local released = {}
for _, token in ipairs(owned_tokens(ARGV[2])) do
  local _, some = settle(token, '1-1000000000', true)
  for _, e in ipairs(some) do released[#released + 1] = e end
end
give_back(released, tonumber(ARGV[1]))
return #released
