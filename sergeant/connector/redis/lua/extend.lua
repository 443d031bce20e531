#!lua flags=allow-oom
-- extend.lua: move the deadline of held leases to server TIME + ARGV[1].
--
-- KEYS: the queue's keys (see _lib.lua)
-- ARGV[1] lease_seconds
-- ARGV[2..] pairs (token, slots as 'a-b,c,...')
--
-- Returns: how many of the given entries are still held (their batch was extended).
local deadline = format('%.6f', tonumber(now_text()) + tonumber(ARGV[1]))
local held = 0
for i = 2, #ARGV - 1, 2 do
  local slots = held_slots(ARGV[i], ARGV[i + 1])
  if #slots > 0 then
    redis.call('ZADD', LEASED, 'XX', deadline, ARGV[i])
    held = held + #slots
  end
end
return held
