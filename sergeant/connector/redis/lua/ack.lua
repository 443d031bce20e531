-- ack.lua: forget leased items for good.
--
-- KEYS[1] leased  zset  '<id>:<token>' -> lease deadline
-- KEYS[2] items   hash  id -> payload
-- ARGV[1..n] item ids; ARGV[n+1..2n] their fencing tokens
--
-- Returns: how many items were acknowledged.
-- Invariants: an item counts only if '<id>:<token>' is leased, i.e. its lease is
-- held; a stale lease is skipped (its item may be someone else's by now).
local CHUNK = 2000
local n = #ARGV / 2
local acked = 0
for i = 1, n, CHUNK do
  local j = math.min(i + CHUNK - 1, n)
  local members = {}
  for k = i, j do
    members[k - i + 1] = ARGV[k] .. ':' .. ARGV[n + k]
  end
  local scores = redis.call('ZMSCORE', KEYS[1], unpack(members))
  local held, ids, seen = {}, {}, {}
  for k = 1, #members do
    local member = members[k]
    if scores[k] and not seen[member] then
      seen[member] = true
      held[#held + 1] = member
      ids[#ids + 1] = ARGV[i + k - 1]
    end
  end
  if #held > 0 then
    redis.call('ZREM', KEYS[1], unpack(held))
    redis.call('HDEL', KEYS[2], unpack(ids))
    acked = acked + #held
  end
end
return acked
