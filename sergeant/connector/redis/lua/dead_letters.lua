-- dead_letters.lua: read up to ARGV[1] dead entries, oldest first, without removing them.
--
-- KEYS: the queue's keys (see _lib.lua)
-- ARGV[1] limit (at least 1)
--
-- Returns: a flat array {entry1, info1, entry2, ...} (info is the JSON record).
local entries = redis.call('LRANGE', DEAD, 0, tonumber(ARGV[1]) - 1)
local out = {}
for _, e in ipairs(entries) do
  out[#out + 1] = e
  out[#out + 1] = redis.call('HGET', DEAD_INFO, item_id(e)) or '{}'
end
return out
