-- extend.lua: move the deadline of held leases to server TIME + ARGV[1].
--
-- KEYS[1] leased  zset  '<id>:<token>' -> lease deadline
-- ARGV[1] lease_seconds
-- ARGV[2..n+1] item ids; ARGV[n+2..2n+1] their fencing tokens
--
-- Returns: how many leases are still held (and were extended).
-- Invariants: a lease counts only if '<id>:<token>' is leased; stale ones are skipped.
local CHUNK = 2000
local n = (#ARGV - 1) / 2
local t = redis.call('TIME')
local deadline = string.format('%.6f', tonumber(t[1]) + tonumber(t[2]) / 1000000 + tonumber(ARGV[1]))
local extended = 0
for i = 1, n, CHUNK do
  local j = math.min(i + CHUNK - 1, n)
  local members = {}
  for k = i, j do
    members[k - i + 1] = ARGV[k + 1] .. ':' .. ARGV[n + k + 1]
  end
  local scores = redis.call('ZMSCORE', KEYS[1], unpack(members))
  local scored, seen = {}, {}
  for k = 1, #members do
    local member = members[k]
    if scores[k] and not seen[member] then
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
