-- extend.lua: move the deadline of held leases to server TIME + ARGV[1].
--
-- KEYS[1] leased  zset  '<id>:<deliveries>:<token>' -> lease deadline
-- ARGV[1] lease_seconds
-- ARGV[2..] '<id>:<deliveries>:<token>' of the leases to extend
--
-- Returns: how many leases are still held (and were extended).
-- Invariants: a lease counts only if '<id>:<deliveries>:<token>' is leased; stale ones are skipped.
local CHUNK = 2000
local n = #ARGV
local t = redis.call('TIME')
local deadline = string.format('%.6f', tonumber(t[1]) + tonumber(t[2]) / 1000000 + tonumber(ARGV[1]))
local extended, seen = 0, {}
for i = 2, n, CHUNK do
  local j = math.min(i + CHUNK - 1, n)
  local scores = redis.call('ZMSCORE', KEYS[1], unpack(ARGV, i, j))
  local scored = {}
  for k = i, j do
    local member = ARGV[k]
    if scores[k - i + 1] and not seen[member] then
      seen[member] = true
      scored[#scored + 1] = deadline
      scored[#scored + 1] = member
    end
  end
  if #scored > 0 then
    redis.call('ZADD', KEYS[1], 'XX', unpack(scored))
    extended = extended + #scored / 2
  end
end
return extended
