-- flow_advance.lua: record one member's success; the last needed one pushes the entry.
--
-- KEYS: the queue's keys (see _lib.lua), then
-- KEYS[18] the node  hash  (fields: see flow_hold.lua)
-- ARGV[1] the member (a decimal number)
-- ARGV[2] its value
-- ARGV[3] TTL of the node in milliseconds, from now
-- ARGV[4] most wake tokens to keep
--
-- Returns: 1 if the node is held and has all its members (now or before), else 0.
-- Invariants: a member counts once and keeps its first value ('c' grows only when
-- its field is new); the held entry is pushed by the call that makes 'c' reach 'n'
-- with 'r' unset, which sets 'r' in the same step, so it is pushed exactly once.
local NODE = KEYS[18]
if redis.call('HSETNX', NODE, 'v:' .. ARGV[1], ARGV[2]) == 1 then
  redis.call('HINCRBY', NODE, 'c', 1)
end
local rec = redis.call('HMGET', NODE, 'n', 'c', 'r', 'p')
local needed, count, released, entry = rec[1], rec[2], rec[3] == '1', rec[4]
if not released and needed and tonumber(count) >= tonumber(needed) then
  released = true
  redis.call('HSET', NODE, 'r', '1')
  if entry and entry ~= '' then
    redis.call('RPUSH', is_high(entry) and HIGH or NORMAL, entry)
    redis.call('HDEL', NODE, 'p')
    wake(1, tonumber(ARGV[4]))
  end
end
redis.call('PEXPIRE', NODE, ARGV[3])
return released and 1 or 0
