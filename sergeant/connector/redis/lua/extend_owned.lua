#!lua flags=allow-oom
-- extend_owned.lua: move the deadline of every batch an owner holds to TIME + ARGV[1].
--
-- KEYS: the queue's keys (see _lib.lua)
-- ARGV[1] lease_seconds
-- ARGV[2] owner
--
-- Returns: how many entries the owner holds.
-- Invariants: found through OWNED, so also the batches whose lease reply the owner
-- has not read yet; the work is one ZRANGEBYLEX plus one ZADD per batch.
local deadline = format('%.6f', tonumber(now_text()) + tonumber(ARGV[1]))
local held = 0
for _, token in ipairs(owned_tokens(ARGV[2])) do
  local live = tonumber(redis.call('HGET', LEASES, token .. ':n'))
  if live then
    redis.call('ZADD', LEASED, 'XX', deadline, token)
    held = held + live
  end
end
return held
