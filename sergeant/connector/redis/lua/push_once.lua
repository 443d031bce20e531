-- push_once.lua: append one entry unless its once key was used within its keep time.
--
-- KEYS: the queue's keys (see _lib.lua), then
-- KEYS[#KEYS] (the last) the once key's mark (a string, under the queue's hash tag)
-- ARGV[1] how long the mark is kept, in milliseconds
-- ARGV[2] most wake tokens to keep
-- ARGV[3] the entry (header + payload, its priority in the header)
--
-- Returns: 1 when the entry was stored, 0 when the key was used.
-- Invariants: the mark (SET NX PX) and the append are one step: no caller sees the
-- key marked without the entry stored, or the entry twice; the mark outlives the
-- entry (acknowledging the entry does not free it).
if not redis.call('SET', KEYS[#KEYS], '1', 'NX', 'PX', ARGV[1]) then
  return 0
end
local entry = ARGV[3]
append({entry}, 1, 1, is_high(entry), '0', false, tonumber(ARGV[2]))
return 1
