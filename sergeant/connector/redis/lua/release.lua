-- release.lua: give leased items back unstarted, at the head of their priority.
--
-- KEYS[1] leased      zset  '<id>:<deliveries>:<token>' -> lease deadline
-- KEYS[2] deliveries  hash  id -> delivery count of items not under lease
-- KEYS[3] high        list  ready HIGH ids
-- KEYS[4] normal      list  ready NORMAL ids
-- KEYS[5] wake        list  wake tokens for blocked leases
-- ARGV[1] most wake tokens to keep in KEYS[5]
-- ARGV[2..] '<id>:<deliveries>:<token>' of the leases to release
--
-- Returns: how many items were released.
-- Invariants: only held leases ('<id>:<deliveries>:<token>' leased) count. Their delivery count
-- goes down by one since they never ran. An id starting with 'H' goes back to HIGH,
-- others to NORMAL; released items come out next, in the order given.
local CHUNK = 2000
local n = #ARGV
local high, normal, seen = {}, {}, {}
for i = 2, n, CHUNK do
  local j = math.min(i + CHUNK - 1, n)
  local scores = redis.call('ZMSCORE', KEYS[1], unpack(ARGV, i, j))
  local held = {}
  for k = i, j do
    local member = ARGV[k]
    if scores[k - i + 1] and not seen[member] then
      seen[member] = true
      held[#held + 1] = member
      local id, d = string.match(member, '^(.*):(%d+):%d+$')
      d = tonumber(d)
      if d > 1 then
        redis.call('HSET', KEYS[2], id, d - 1)
      end
      if string.byte(id, 1) == 72 then -- 'H'
        high[#high + 1] = id
      else
        normal[#normal + 1] = id
      end
    end
  end
  if #held > 0 then
    redis.call('ZREM', KEYS[1], unpack(held))
  end
end

local released = #high + #normal
if released == 0 then
  return 0
end
-- LPUSH puts its last argument first: push in reverse to keep the given order.
local function push_front(list, ids)
  for j = #ids, 1, -CHUNK do
    local i = math.max(1, j - CHUNK + 1)
    local reversed = {}
    for k = j, i, -1 do
      reversed[#reversed + 1] = ids[k]
    end
    redis.call('LPUSH', list, unpack(reversed))
  end
end
push_front(KEYS[3], high)
push_front(KEYS[4], normal)

local cap = tonumber(ARGV[1])
local tokens = {}
for k = 1, math.min(released, cap) do
  tokens[k] = '1'
end
redis.call('RPUSH', KEYS[5], unpack(tokens))
redis.call('LTRIM', KEYS[5], -cap, -1)
return released
