-- push.lua: append payloads to one priority of a queue, ready now or delayed.
--
-- KEYS[1] seq       string  item id counter
-- KEYS[2] items     hash    id -> payload
-- KEYS[3] ready     list    ready ids of this priority
-- KEYS[4] delayed   zset    delayed ids of this priority, id -> eta
-- KEYS[5] wake      list    wake tokens for blocked leases
-- ARGV[1] eta (Unix seconds); 0 or a time past on the server clock means ready now
-- ARGV[2] most wake tokens to keep in KEYS[5]
-- ARGV[3] id prefix: 'H' for HIGH, 'N' for NORMAL (the priority an item returns to)
-- ARGV[4..] payloads, in the order they must be handed out
--
-- Returns: the number of items pushed.
-- Invariants: ids are allocated here: the prefix, then a zero-padded counter, so
-- that their byte order is their push order (a zset breaks score ties by member).
local n = #ARGV - 3
if n <= 0 then
  return 0
end
local first = redis.call('INCRBY', KEYS[1], n) - n
local eta = tonumber(ARGV[1])
local delayed = false
if eta > 0 then
  local t = redis.call('TIME')
  delayed = eta > tonumber(t[1]) + tonumber(t[2]) / 1000000
end

-- Lua's unpack() stack limit is about 8000 values: write in bounded chunks.
local CHUNK = 2000
local format, prefix = string.format, ARGV[3]
for i = 1, n, CHUNK do
  local j = math.min(i + CHUNK - 1, n)
  local fields, ids, f, m = {}, {}, 0, 0
  for k = i, j do
    local id = prefix .. format('%012d', first + k)
    fields[f + 1] = id
    fields[f + 2] = ARGV[k + 3]
    f = f + 2
    if delayed then
      ids[m + 1] = ARGV[1]
      ids[m + 2] = id
      m = m + 2
    else
      m = m + 1
      ids[m] = id
    end
  end
  redis.call('HSET', KEYS[2], unpack(fields))
  if delayed then
    redis.call('ZADD', KEYS[4], unpack(ids))
  else
    redis.call('RPUSH', KEYS[3], unpack(ids))
  end
end

-- One token per item, up to the cap, so that as many blocked leases wake as can
-- get something; a delayed push wakes one so it recomputes its wait.
local cap = tonumber(ARGV[2])
local wanted = delayed and 1 or math.min(n, cap)
local tokens = {}
for k = 1, wanted do
  tokens[k] = '1'
end
redis.call('RPUSH', KEYS[5], unpack(tokens))
redis.call('LTRIM', KEYS[5], -cap, -1)
return n
