-- push_grouped.lua: append entries to their groups, ready now or delayed.
--
-- KEYS: the queue's keys (see _lib.lua)
-- ARGV[1] eta (Unix seconds); 0 or a time past on the server clock means ready now
-- ARGV[2] most wake tokens to keep
-- ARGV[3] 'H' for HIGH, 'N' for NORMAL
-- ARGV[4..] pairs (entry, group key), in push order
--
-- Returns: how many entries were pushed.
-- Invariants: every entry's group is recorded under its id (GROUP_ITEMS) for as long
-- as it lives. A ready entry goes to the tail of its group's list of its priority; a
-- group that had no ready entry joins the ring's tail (group_put). A delayed entry
-- goes to the queue's delayed set and joins its group when promoted. Wake tokens as
-- push.lua.
local eta = tonumber(ARGV[1])
local delayed = false
if eta > 0 then
  local t = redis.call('TIME')
  delayed = eta > tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local high = ARGV[3] == 'H'
local order, by_group, all = {}, {}, {}
for i = 4, #ARGV - 1, 2 do
  local entry, g = ARGV[i], ARGV[i + 1]
  redis.call('HSET', GROUP_ITEMS, item_id(entry), g)
  all[#all + 1] = entry
  if not by_group[g] then
    by_group[g] = {}
    order[#order + 1] = g
  end
  local list = by_group[g]
  list[#list + 1] = entry
end
if delayed then
  append(all, 1, #all, high, ARGV[1], true, tonumber(ARGV[2]))
  return #all
end
for _, g in ipairs(order) do
  group_put(g, high, by_group[g], false)
end
wake(#all, tonumber(ARGV[2]))
return #all
