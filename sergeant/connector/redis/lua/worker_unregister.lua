#!lua flags=allow-oom
-- worker_unregister.lua: remove one worker's heartbeat.
--
-- KEYS[1] workers:info    hash  worker id -> info
-- KEYS[2] workers:expiry  zset  worker id -> expiry (Unix seconds, server clock)
-- ARGV[1] the worker id
--
-- Returns: 1 if the worker was registered and not yet expired, else 0.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local expiry = redis.call('ZSCORE', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if expiry and tonumber(expiry) > now then
  return 1
end
return 0
