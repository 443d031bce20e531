-- push_unique.lua: append the entries whose unique key is free, ready now or delayed.
--
-- KEYS: the queue's keys (see _lib.lua)
-- ARGV[1] eta (Unix seconds); 0 or a time past on the server clock means ready now
-- ARGV[2] most wake tokens to keep
-- ARGV[3] 'H' for HIGH, 'N' for NORMAL
-- ARGV[4..] triples (entry, unique key or '' for none, task id), in push order
--
-- Returns: per triple, the task id holding its key (its own when it was stored).
-- Invariants: a key names one entry of the queue (ready, delayed or leased) from
-- this push until that entry is acknowledged, popped, dead-lettered or purged
-- (see free in _lib.lua); a later triple with a held key, of this call or not, is
-- not stored. The stored entries are appended in order with wake tokens, as by
-- push.lua.
local eta = tonumber(ARGV[1])
local delayed = false
if eta > 0 then
  local t = redis.call('TIME')
  delayed = eta > tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local holders, stored = {}, {}
for i = 4, #ARGV - 2, 3 do
  local entry, key, task_id = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local holder = key ~= '' and redis.call('HGET', UNIQUE, key)
  if holder then
    holders[#holders + 1] = sub(holder, 21)
  else
    if key ~= '' then
      redis.call('HSET', UNIQUE, key, item_id(entry) .. task_id)
      redis.call('HSET', UNIQUE_ITEMS, item_id(entry), key)
    end
    stored[#stored + 1] = entry
    holders[#holders + 1] = task_id
  end
end
if #stored == 0 then
  return holders
end
append(stored, 1, #stored, ARGV[3] == 'H', ARGV[1], delayed, tonumber(ARGV[2]))
return holders
