#!lua flags=allow-oom
-- lease.lua: acknowledge settled leases, then hand out up to ARGV[1] ready entries
-- under one new lease.
--
-- KEYS: the queue's keys (see _lib.lua)
-- ARGV[1] count: the most entries to hand out
-- ARGV[2] lease_seconds
-- ARGV[3..] pairs (token, slots as 'a-b,c,...') to acknowledge first (may be none)
--
-- Returns: {-1, acknowledged, token, {entry1, entry2, ...}} when entries were handed
-- out; otherwise (two items only) {wait_ms, acknowledged}: wait_ms is -1 when nothing
-- is delayed, else the milliseconds (at least 1) until the earliest delayed entry is due.
-- Invariants: same order and promotion as pop.lua. All entries of one call form one
-- batch under a fresh value of the never-reset lease counter (the fencing token),
-- recorded once, not per entry: the entries (msgpack), one held-flag per entry, the
-- held count, and the deadline (server TIME + lease_seconds) in LEASED. A delivery's
-- count is the entry's earlier deliveries + 1 (the client reads it from the header).
-- When nothing is ready the wake tokens are stale (every earlier push has been
-- consumed) and are deleted.
local acked = settle_args(3, false)
local count = tonumber(ARGV[1])
local now = now_text()
promote(now, math.max(count, 1000))
local entries = redis.call('LPOP', HIGH, count) or {}
local high = #entries
if high == 0 then
  entries = redis.call('LPOP', NORMAL, count) or {} -- the usual case: no copy
elseif high < count then
  local more = redis.call('LPOP', NORMAL, count - high) or {}
  for k = 1, #more do
    entries[high + k] = more[k]
  end
end
if #entries == 0 then
  redis.call('DEL', WAKE)
  local wait = -1
  for _, zset in ipairs({DELAYED_HIGH, DELAYED_NORMAL}) do
    local head = redis.call('ZRANGE', zset, 0, 0, 'WITHSCORES')
    if head[2] then
      local ms = math.max(1, math.ceil((tonumber(head[2]) - tonumber(now)) * 1000))
      if wait < 0 or ms < wait then
        wait = ms
      end
    end
  end
  return {wait, acked}
end

local token = redis.call('INCR', LEASE_SEQ)
redis.call('HSET', LEASES, token, cmsgpack.pack(entries),
  token .. ':f', string.rep('1', #entries), token .. ':n', #entries)
redis.call('ZADD', LEASED, format('%.6f', tonumber(now) + tonumber(ARGV[2])), token)
redis.call('INCRBY', LEASED_COUNT, #entries)
return {-1, acked, token, entries}
