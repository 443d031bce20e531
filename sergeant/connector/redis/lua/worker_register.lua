#!lua flags=allow-oom
-- worker_register.lua: publish or refresh one worker's heartbeat, and sweep expired ones.
--
-- KEYS[1] workers:info    hash  worker id -> info (bytes, JSON written by the worker)
-- KEYS[2] workers:expiry  zset  worker id -> expiry (Unix seconds, server clock)
-- ARGV[1] the worker id
-- ARGV[2] its info
-- ARGV[3] seconds it stays alive without another heartbeat
--
-- Returns: 1.
-- Invariants: a worker is alive while its expiry is after server TIME; readers check
-- that (no reliance on this sweep, which only bounds the hash's size).
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[1])
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 100)
if #expired > 0 then
  redis.call('HDEL', KEYS[1], unpack(expired))
  redis.call('ZREM', KEYS[2], unpack(expired))
end
return 1
