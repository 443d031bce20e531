-- push.lua: append entries to one priority of a queue, ready now or delayed.
--
-- KEYS: the queue's keys (see _lib.lua)
-- ARGV[1] eta (Unix seconds); 0 or a time past on the server clock means ready now
-- ARGV[2] most wake tokens to keep; 0 adds none (a later part of one push)
-- ARGV[3] 'H' for HIGH, 'N' for NORMAL
-- ARGV[4..] entries (header + payload), in the order they must be handed out
--
-- Returns: the number of entries pushed.
local n = #ARGV - 3
if n <= 0 then
  return 0
end
local eta = tonumber(ARGV[1])
local delayed = false
if eta > 0 then
  local t = redis.call('TIME')
  delayed = eta > tonumber(t[1]) + tonumber(t[2]) / 1000000
end
append(ARGV, 4, #ARGV, ARGV[3] == 'H', ARGV[1], delayed, tonumber(ARGV[2]))
return n
