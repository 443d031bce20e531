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
local high = ARGV[3] == 'H'
if delayed then
  local zset = high and DELAYED_HIGH or DELAYED_NORMAL
  for i = 4, #ARGV, CHUNK do
    local scored = {}
    for k = i, math.min(i + CHUNK - 1, #ARGV) do
      scored[#scored + 1] = ARGV[1]
      scored[#scored + 1] = ARGV[k]
    end
    redis.call('ZADD', zset, unpack(scored))
  end
  -- One token so a blocked lease recomputes its wait for the earliest eta.
  wake(1, tonumber(ARGV[2]))
  return n
end
local list = high and HIGH or NORMAL
for i = 4, #ARGV, CHUNK do
  redis.call('RPUSH', list, unpack(ARGV, i, math.min(i + CHUNK - 1, #ARGV)))
end
-- One token per entry, up to the cap, so as many blocked leases wake as can get one.
wake(n, tonumber(ARGV[2]))
return n
