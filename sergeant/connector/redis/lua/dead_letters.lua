-- dead_letters.lua: read up to ARGV[1] dead items, oldest first, without removing them.
--
-- KEYS[1] dead       list  dead ids, oldest first
-- KEYS[2] dead:info  hash  id -> JSON {reason, error, deliveries, dead_at}
-- KEYS[3] items      hash  id -> payload
-- ARGV[1] limit (at least 1)
--
-- Returns: a flat array {id1, payload1, info1, id2, ...}.
local ids = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #ids == 0 then
  return {}
end
local out = {}
local CHUNK = 4000
for i = 1, #ids, CHUNK do
  local j = math.min(i + CHUNK - 1, #ids)
  local infos = redis.call('HMGET', KEYS[2], unpack(ids, i, j))
  local payloads = redis.call('HMGET', KEYS[3], unpack(ids, i, j))
  for k = 1, j - i + 1 do
    out[#out + 1] = ids[i + k - 1]
    out[#out + 1] = payloads[k] or ''
    out[#out + 1] = infos[k] or '{}'
  end
end
return out
