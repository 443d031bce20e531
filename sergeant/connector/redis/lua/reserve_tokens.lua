#!lua flags=allow-oom
-- reserve_tokens.lua: reserve a block of a queue's fencing tokens (see tokens.py).
--
-- KEYS[1] the queue's lease counter (QueueKeys.lease_seq)
-- KEYS[2] the queue's lease records (QueueKeys.leases)
-- ARGV[1] how many tokens
--
-- Returns: the last token of the block.
-- Invariants: a script, not a bare INCRBY, so that a full Redis (allow-oom) still
-- hands out tokens: leasing is what drains it. The counter is mirrored in the lease
-- records' field '#seq', which lease.lua reads in the same HMGET as the token's record.
local last = redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], '#seq', last)
return last
