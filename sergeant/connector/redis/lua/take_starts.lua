-- take_starts.lua: grant start permits from a sliding-window log (Connector.take_starts).
--
-- KEYS[1] the key's log     list    one 'at:count' entry per grant, oldest first
--                                   (at: Unix seconds of server TIME, 6 decimals)
-- KEYS[2] its total         string  the sum of the counts in the log
-- ARGV[1] tasks: most starts per window
-- ARGV[2] window seconds
-- ARGV[3] want: starts asked for (0: only read)
--
-- Returns: {granted, retry seconds as a string}: retry is '0' when all were granted
-- (want > 0), or, want 0, when a start is allowed now; else the seconds until the
-- oldest grants expire enough to leave room for one more start.
-- Invariants: the grants of any window of ARGV[2] seconds (server clock) add up to at
-- most ARGV[1]: entries older than the window are dropped first (their counts taken
-- off the total), then at most tasks - total are granted, stamped now. Both keys
-- expire one second after the window, so an idle key leaves nothing behind.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local tasks, window, want = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local log, total = KEYS[1], KEYS[2]

local function parse(entry)
  local sep = string.find(entry, ':', 1, true)
  return tonumber(string.sub(entry, 1, sep - 1)), tonumber(string.sub(entry, sep + 1))
end

local used = tonumber(redis.call('GET', total) or '')
if not used then  -- the total was lost (eviction): count the log again
  used = 0
  for _, entry in ipairs(redis.call('LRANGE', log, 0, -1)) do
    local _, count = parse(entry)
    used = used + count
  end
end
while true do
  local head = redis.call('LINDEX', log, 0)
  if not head then
    used = 0
    break
  end
  local at, count = parse(head)
  if at > now - window then
    break
  end
  used = used - count
  redis.call('LPOP', log)
end

local granted = math.max(0, math.min(want, tasks - used))
if granted > 0 then
  redis.call('RPUSH', log, string.format('%.6f:%d', now, granted))
  used = used + granted
end
local ttl = math.ceil(window * 1000) + 1000
if used > 0 then
  redis.call('SET', total, used, 'PX', ttl)
  redis.call('PEXPIRE', log, ttl)
else
  redis.call('DEL', total, log)
end

local retry = 0
if (granted < want or want == 0) and used >= tasks then
  local left, start = used, 0
  while left >= tasks do
    local chunk = redis.call('LRANGE', log, start, start + 99)
    if #chunk == 0 then
      break
    end
    for _, entry in ipairs(chunk) do
      local at, count = parse(entry)
      left = left - count
      if left < tasks then
        retry = math.max(at + window - now, 0)
        break
      end
    end
    start = start + 100
  end
end
return {granted, string.format('%.6f', retry)}
