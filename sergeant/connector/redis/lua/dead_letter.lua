-- dead_letter.lua: move leased items to the dead letters with a reason and an error.
--
-- KEYS[1] leased     zset  '<id>:<deliveries>:<token>' -> lease deadline
-- KEYS[2] dead       list  dead ids, oldest first
-- KEYS[3] dead:info  hash  id -> JSON {reason, error, deliveries, dead_at}
-- ARGV[1] reason
-- ARGV[2] error text (may be empty)
-- ARGV[3..] '<id>:<deliveries>:<token>' of the leases to dead-letter
--
-- Returns: how many items were moved.
-- Invariants: only held leases ('<id>:<deliveries>:<token>' leased) count. The payload stays in
-- items; the delivery count (from the member) goes into the record; dead_at is server TIME.
local CHUNK = 2000
local n = #ARGV
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local moved, seen = 0, {}
for i = 3, n, CHUNK do
  local j = math.min(i + CHUNK - 1, n)
  local scores = redis.call('ZMSCORE', KEYS[1], unpack(ARGV, i, j))
  local held, ids, records = {}, {}, {}
  for k = i, j do
    local member = ARGV[k]
    if scores[k - i + 1] and not seen[member] then
      seen[member] = true
      local id, d = string.match(member, '^(.*):(%d+):%d+$')
      held[#held + 1] = member
      ids[#ids + 1] = id
      records[#records + 1] = id
      records[#records + 1] = cjson.encode({
        reason = ARGV[1],
        error = ARGV[2],
        deliveries = tonumber(d),
        dead_at = now,
      })
    end
  end
  if #held > 0 then
    redis.call('ZREM', KEYS[1], unpack(held))
    redis.call('RPUSH', KEYS[2], unpack(ids))
    redis.call('HSET', KEYS[3], unpack(records))
    moved = moved + #held
  end
end
return moved
