#!lua flags=allow-oom
-- lock_release.lua: free a lock if ARGV[1] still owns it (compare-and-delete).
--
-- KEYS[1] lock  string  owner token
-- ARGV[1] the caller's owner token
--
-- Returns: 1 if the lock was held by this token and is now free, else 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
