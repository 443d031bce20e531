#!lua flags=allow-oom
-- lock_set_ttl.lua: make a lock expire ARGV[2] ms from now if ARGV[1] still owns it.
--
-- KEYS[1] lock  string  owner token
-- ARGV[1] the caller's owner token
-- ARGV[2] TTL in milliseconds (0 or less deletes the lock: it is free at once)
--
-- Returns: 1 if the TTL was changed, else 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
