#!lua flags=allow-oom
-- ack.lua: forget leased entries for good.
--
-- KEYS: the queue's keys (see _lib.lua)
-- ARGV: pairs (token, slots as 'a-b,c,...')
--
-- Returns: how many entries were acknowledged.
-- Invariants: only entries their batch still holds count (see held_slots); a stale
-- or repeated acknowledgement is skipped.
return (settle_args(1, false))
