-- workers_live.lua: the info of every worker whose heartbeat has not expired.
--
-- KEYS[1] workers:info    hash  worker id -> info
-- KEYS[2] workers:expiry  zset  worker id -> expiry (Unix seconds, server clock)
--
-- Returns: a list of info values, in expiry order.
-- Invariants: read-only; expiry is judged on server TIME.
local t = redis.call('TIME')
local now = t[1] .. '.' .. string.format('%06d', t[2])
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. now, '+inf')
if #ids == 0 then
  return {}
end
local found = {}
for _, info in ipairs(redis.call('HMGET', KEYS[1], unpack(ids))) do
  if info then
    found[#found + 1] = info
  end
end
return found
