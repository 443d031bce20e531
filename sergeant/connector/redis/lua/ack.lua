-- ack.lua: forget leased items for good.
--
-- KEYS[1] leased  zset  '<id>:<deliveries>:<token>' -> lease deadline
-- KEYS[2] items   hash  id -> payload
-- ARGV[1..n] '<id>:<deliveries>:<token>' of the leases to acknowledge
--
-- Returns: how many items were acknowledged.
-- Invariants: an item counts only if '<id>:<deliveries>:<token>' is leased, i.e. its lease is
-- held; a stale lease is skipped (its item may be someone else's by now). A lease
-- given twice counts once (ZREM's reply is the count).
local CHUNK = 2000
local find, sub = string.find, string.sub
local n = #ARGV
local acked = 0
for i = 1, n, CHUNK do
  local j = math.min(i + CHUNK - 1, n)
  local scores = redis.call('ZMSCORE', KEYS[1], unpack(ARGV, i, j))
  local held, ids, h = {}, {}, 0
  for k = i, j do
    local member = ARGV[k]
    if scores[k - i + 1] then
      h = h + 1
      held[h] = member
      ids[h] = sub(member, 1, find(member, ':', 1, true) - 1)
    end
  end
  if h > 0 then
    acked = acked + redis.call('ZREM', KEYS[1], unpack(held))
    redis.call('HDEL', KEYS[2], unpack(ids))
  end
end
return acked
