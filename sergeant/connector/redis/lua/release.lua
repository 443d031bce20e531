#!lua flags=allow-oom
-- release.lua: give leased entries back unstarted, at the head of their priority.
--
-- KEYS: the queue's keys (see _lib.lua)
-- ARGV[1] most wake tokens to keep
-- ARGV[2..] pairs (token, slots as 'a-b,c,...')
--
-- Returns: how many entries were released.
-- Invariants: only held entries count. Their header is unchanged, so their next
-- delivery counts as this one did (they never ran). They come out next, in the
-- order given, each at the head of the priority it was pushed with.
local released, entries = settle_args(2, true)
give_back(entries, tonumber(ARGV[1]))
return released
