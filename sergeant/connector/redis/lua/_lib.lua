-- _lib.lua: shared by the queue scripts (prepended to each when it is loaded).
--
-- Every queue script gets all of the queue's keys, in the order of keys.QueueKeys:
local HIGH, NORMAL, DELAYED_HIGH, DELAYED_NORMAL = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local LEASES, LEASED, LEASED_COUNT, LEASE_SEQ = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local DEAD, DEAD_INFO, WAKE, OWNED = KEYS[9], KEYS[10], KEYS[11], KEYS[12]
local UNIQUE, UNIQUE_ITEMS = KEYS[13], KEYS[14]
-- An entry is a 25-byte header then the payload: byte 1 'H' or 'N' (the priority to
-- return to), bytes 2-21 the item id, bytes 22-25 its earlier unacknowledged
-- deliveries (zero-padded decimal, saturating at 9999).
local CHUNK = 2000
local byte, sub, format, concat = string.byte, string.sub, string.format, table.concat

local function now_text()
  local t = redis.call('TIME')
  return t[1] .. '.' .. format('%06d', t[2])
end

local function item_id(entry)
  return sub(entry, 2, 21)
end

local function earlier_deliveries(entry)
  return tonumber(sub(entry, 22, 25))
end

local function with_deliveries(entry, count)
  return sub(entry, 1, 21) .. format('%04d', math.min(count, 9999)) .. sub(entry, 26)
end

local function is_high(entry)
  return byte(entry, 1) == 72 -- 'H'
end

-- Whether any entry of the queue holds a unique key: one EXISTS per script call, so
-- a queue without unique entries pays nothing per entry.
local unique_known, unique_any = false, false
local function has_unique()
  if not unique_known then
    unique_known, unique_any = true, redis.call('EXISTS', UNIQUE_ITEMS) == 1
  end
  return unique_any
end

-- Free the unique keys of entries that leave the queue for good.
local function free(entries)
  if not has_unique() then
    return
  end
  for _, e in ipairs(entries) do
    local id = item_id(e)
    local key = redis.call('HGET', UNIQUE_ITEMS, id)
    if key then
      redis.call('HDEL', UNIQUE_ITEMS, id)
      redis.call('HDEL', UNIQUE, key)
    end
  end
end

-- Move a leased entry to the dead letters: its header counts `deliveries` (this one
-- included); the record under its id says why.
local function bury(entry, deliveries, reason, error, dead_at)
  redis.call('RPUSH', DEAD, with_deliveries(entry, deliveries))
  redis.call('HSET', DEAD_INFO, item_id(entry), cjson.encode({
    reason = reason, error = error, deliveries = deliveries, dead_at = dead_at,
  }))
  free({entry})
end

-- Wake up to n blocked leases (at most cap tokens are kept).
local function wake(n, cap)
  local tokens = {}
  for k = 1, math.min(n, cap) do
    tokens[k] = '1'
  end
  if #tokens > 0 then
    redis.call('RPUSH', WAKE, unpack(tokens))
    redis.call('LTRIM', WAKE, -cap, -1)
  end
end

-- Append entries[first..last], in order, to the tail of a priority's ready list, or
-- to its delayed set scored `eta` (its text); then wake blocked leases: one token per
-- ready entry, one for a delayed push (at most `cap` kept; 0 adds none).
local function append(entries, first, last, high, eta, delayed, cap)
  if delayed then
    local zset = high and DELAYED_HIGH or DELAYED_NORMAL
    for i = first, last, CHUNK do
      local scored = {}
      for k = i, math.min(i + CHUNK - 1, last) do
        scored[#scored + 1] = eta
        scored[#scored + 1] = entries[k]
      end
      redis.call('ZADD', zset, unpack(scored))
    end
    wake(1, cap)
    return
  end
  local list = high and HIGH or NORMAL
  for i = first, last, CHUNK do
    redis.call('RPUSH', list, unpack(entries, i, math.min(i + CHUNK - 1, last)))
  end
  wake(last - first + 1, cap)
end

-- Put entries at the head of their own priority, keeping their given order.
local function push_front(entries)
  local high, normal = {}, {}
  for k = #entries, 1, -1 do -- LPUSH puts its last argument first: go backwards
    local e = entries[k]
    if is_high(e) then high[#high + 1] = e else normal[#normal + 1] = e end
  end
  for _, pair in ipairs({{HIGH, high}, {NORMAL, normal}}) do
    local list, items = pair[1], pair[2]
    for i = 1, #items, CHUNK do
      redis.call('LPUSH', list, unpack(items, i, math.min(i + CHUNK - 1, #items)))
    end
  end
end

-- Make up to `limit` due delayed entries of each priority ready (FIFO by eta).
local function promote(now, limit)
  if redis.call('EXISTS', DELAYED_HIGH, DELAYED_NORMAL) == 0 then
    return -- the usual case: nothing delayed, one cheap check
  end
  for _, pair in ipairs({{DELAYED_HIGH, HIGH}, {DELAYED_NORMAL, NORMAL}}) do
    local due = redis.call('ZRANGEBYSCORE', pair[1], '-inf', now, 'LIMIT', 0, limit)
    for i = 1, #due, CHUNK do
      local j = math.min(i + CHUNK - 1, #due)
      redis.call('ZREM', pair[1], unpack(due, i, j))
      redis.call('RPUSH', pair[2], unpack(due, i, j))
    end
  end
end

-- The slots (1-based, ascending, no repeats) named by 'a-b,c,...', within 1..n.
local function parse_slots(ranges, n)
  local slots, seen = {}, {}
  for part in string.gmatch(ranges, '[^,]+') do
    local a, b = string.match(part, '^(%d+)-(%d+)$')
    if not a then
      a, b = part, part
    end
    for s = math.max(1, tonumber(a) or 1), math.min(n, tonumber(b) or 0) do
      if not seen[s] then
        seen[s] = true
        slots[#slots + 1] = s
      end
    end
  end
  table.sort(slots)
  return slots
end

-- The member of OWNED naming batch `token` of `owner`: tokens are zero-padded, so
-- one owner's members sort in lease order and share the prefix `owner|`.
local function owned_member(owner, token)
  return owner .. '|' .. format('%020d', tonumber(token))
end

-- The slots among `ranges` that batch `token` still holds: (held slots, flags, live,
-- owner). A batch that no longer exists (acknowledged, or reclaimed after its lease
-- expired) holds nothing: that is how a stale owner is fenced off.
local function held_slots(token, ranges)
  local rec = redis.call('HMGET', LEASES, token .. ':f', token .. ':n', token .. ':o')
  local flags, live = rec[1], tonumber(rec[2])
  if not flags then
    return {}, nil, 0, nil
  end
  local n = #flags
  if live == n and ranges == '1-' .. n then -- the whole, untouched batch
    local all = {}
    for s = 1, n do all[s] = s end
    return all, flags, live, rec[3]
  end
  local held = {}
  for _, s in ipairs(parse_slots(ranges, n)) do
    if byte(flags, s) == 49 then -- '1'
      held[#held + 1] = s
    end
  end
  return held, flags, live, rec[3]
end

-- Stop holding `slots` of batch `token`; returns their entries when `want_entries`.
-- Without `want_entries` it is an acknowledgement: the entries' unique keys are freed.
local function settle(token, ranges, want_entries)
  local held, flags, live, owner = held_slots(token, ranges)
  if #held == 0 then
    return 0, {}
  end
  local entries = {}
  if want_entries or has_unique() then
    local all = cmsgpack.unpack(redis.call('HGET', LEASES, token))
    for k, s in ipairs(held) do
      entries[k] = all[s]
    end
  end
  if #held == live then
    redis.call('HDEL', LEASES, token, token .. ':f', token .. ':n', token .. ':o', token .. ':a')
    redis.call('ZREM', LEASED, token)
    if owner then
      redis.call('ZREM', OWNED, owned_member(owner, token))
    end
  else
    local out, gone = {}, {}
    for _, s in ipairs(held) do gone[s] = true end
    for s = 1, #flags do
      out[s] = (gone[s] or byte(flags, s) ~= 49) and '0' or '1'
    end
    redis.call('HSET', LEASES, token .. ':f', concat(out), token .. ':n', live - #held)
  end
  redis.call('DECRBY', LEASED_COUNT, #held)
  if not want_entries then
    free(entries)
  end
  return #held, entries
end

-- Settle every (token, ranges) pair of ARGV from position `first`; returns the count
-- and, when `want_entries`, the entries in the order given.
local function settle_args(first, want_entries)
  local count, entries = 0, {}
  for i = first, #ARGV - 1, 2 do
    local n, some = settle(ARGV[i], ARGV[i + 1], want_entries)
    count = count + n
    for _, e in ipairs(some) do entries[#entries + 1] = e end
  end
  return count, entries
end

-- The tokens of the batches `owner` holds, in lease order.
local function owned_tokens(owner)
  local members = redis.call('ZRANGEBYLEX', OWNED, '[' .. owner .. '|', '(' .. owner .. '}')
  local tokens = {}
  for k, m in ipairs(members) do
    tokens[k] = tostring(tonumber(sub(m, #owner + 2)))
  end
  return tokens
end

-- Give back `entries` (handed out, never run) to the head of their priority, waking
-- as many blocked leases.
local function give_back(entries, cap)
  push_front(entries)
  wake(#entries, cap)
end
