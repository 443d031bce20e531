#!lua flags=allow-oom
-- lease.lua: acknowledge settled leases, then hand out up to ARGV[5] ready entries
-- under one new lease whose fencing token the client chose.
--
-- KEYS: the queue's keys (see _lib.lua)
-- ARGV[1] lease_seconds
-- ARGV[2] owner: the leasing worker process (extend_owned / release_owned find it)
-- ARGV[3] group limits: '' or 'concurrency,rate_tasks,rate_seconds' (see ring_take)
-- ARGV[4] form: '1' a small batch: its entries packed into its record and in the
--         reply; '0' a large one: its entries in the batch's own list and only their
--         number in the reply (the client reads them with the LRANGE of that list it
--         sends right behind)
-- ARGV[5] count: the most entries to hand out
-- ARGV[6] token: a value from the client's block of the never-reset lease counter
-- ARGV[7..] pairs (token, slots as 'a-b,c,...') to acknowledge first (may be none)
--
-- Returns: {-1, acknowledged, token, {entry1, entry2, ...} or their number (form '0',
-- but for a repeated call)} when entries were handed out; {-2, 0} when the token is above the lease counter ('#seq'
-- in LEASES) (the server lost its data: the client reserves a new block and calls
-- again; nothing was done); otherwise {wait_ms, acknowledged}: wait_ms is -1 when
-- nothing is delayed, else the milliseconds (at least 1) until the earliest delayed
-- entry is due.
-- Invariants: same order and promotion as pop.lua. All entries of one call form one
-- batch under the token, recorded once, not per entry: the entries (packed into field
-- T, or the batch's list, batch_key), one held-flag per entry, the held count, the
-- owner, the acknowledged count, the deadline (server TIME + lease_seconds) in LEASED
-- and the owner's member in OWNED. A large batch of a plain queue (plain_queue:
-- nothing HIGH, delayed, unique or grouped) moves from NORMAL's head to the batch's
-- list by SORT BY nosort ... STORE and LTRIM, inside Redis: the script never holds its
-- entries, so what it costs per entry is what moving the bytes costs. LEASED_COUNT is
-- written once for the acknowledgements and the lease. A call repeated with the same
-- token (its reply was lost: a timeout, a dropped connection) hands out the same
-- batch again, its entries always in the reply, and reports the same
-- acknowledgements, so a retry neither strands a batch nor reads as rejected
-- acknowledgements. A delivery's count is the entry's earlier deliveries + 1 (the
-- client reads it from the header). When nothing is ready the wake tokens are stale
-- (every earlier push has been consumed) and are deleted. When the queue has ready
-- grouped entries they are taken round-robin over the ring (ring_take in _lib.lua),
-- within the limits.
local token = ARGV[6]
local inline = ARGV[4] == '1'
-- '#seq' mirrors the lease counter as of the last reservation (reserve_tokens.lua).
-- The acknowledged batches' records come in the same HMGET (read_records).
local first, recs = read_records(7, {token .. ':f', token .. ':a', '#seq', token})
if tonumber(token) > tonumber(first[3] or 0) then
  return {-2, 0} -- before any acknowledgement: theirs may be as unknown as this token
end
local plain = plain_queue()
count_delta = 0 -- written once, below
local acked = settle_args(7, false, recs)
if first[1] then
  if count_delta ~= 0 then
    redis.call('INCRBY', LEASED_COUNT, count_delta)
  end
  -- Its entries in the reply, whichever form either call asked for: a retry may come
  -- by another path (the lane, the pool) than the lost call, and is rare.
  return {-1, acked + tonumber(first[2] or 0), tonumber(token), batch_entries(token, first[4])}
end
local count = tonumber(ARGV[5])
local now = now_text()
local batch = batch_key(token)
local entries, stored
if plain and not inline then -- the usual large batch: moved inside Redis
  local moved = redis.pcall('SORT', NORMAL, 'BY', 'nosort', 'LIMIT', 0, count, 'STORE', batch)
  if type(moved) == 'number' then
    stored = moved
    if stored > 0 then
      redis.call('LTRIM', NORMAL, stored, -1)
    end
  else -- SORT refused (an ACL without @dangerous): through the script
    entries = redis.call('LPOP', NORMAL, count) or {}
  end
elseif plain then
  entries = redis.call('LPOP', NORMAL, count) or {}
else
  promote(now, math.max(count, 1000))
  if has_groups() and redis.call('EXISTS', GROUP_RING) == 1 then
    entries = ring_take(count, parse_limits(ARGV[3]), tonumber(now))
  else
    entries = redis.call('LPOP', HIGH, count) or {}
    local high = #entries
    if high == 0 then
      entries = redis.call('LPOP', NORMAL, count) or {} -- no copy
    elseif high < count then
      local more = redis.call('LPOP', NORMAL, count - high) or {}
      for k = 1, #more do
        entries[high + k] = more[k]
      end
    end
  end
end
if entries then
  stored = #entries
  if not inline then
    for i = 1, stored, CHUNK do
      redis.call('RPUSH', batch, unpack(entries, i, math.min(i + CHUNK - 1, stored)))
    end
  end
end
if stored == 0 then
  if count_delta ~= 0 then
    redis.call('INCRBY', LEASED_COUNT, count_delta)
  end
  redis.call('DEL', WAKE)
  local wait = -1
  for _, zset in ipairs(plain and {} or {DELAYED_HIGH, DELAYED_NORMAL}) do
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

local owner = ARGV[2]
local record = {token .. ':f', string.rep('1', stored), token .. ':n', stored,
  token .. ':o', owner, token .. ':a', acked}
if inline then
  record[#record + 1], record[#record + 2] = token, cmsgpack.pack(entries)
end
redis.call('HSET', LEASES, unpack(record))
redis.call('ZADD', LEASED, format('%.6f', tonumber(now) + tonumber(ARGV[1])), token)
redis.call('ZADD', OWNED, 0, owned_member(owner, token))
if stored + count_delta ~= 0 then -- one task acknowledged, one leased: no change
  redis.call('INCRBY', LEASED_COUNT, stored + count_delta)
end
return {-1, acked, tonumber(token), inline and entries or stored}
