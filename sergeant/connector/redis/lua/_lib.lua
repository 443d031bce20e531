-- _lib.lua: shared by the queue scripts: prepended to each script, or once in front
-- of all of them in the function library (see functions.py). Either way every call
-- first runs begin(KEYS), which sets what one call needs: the library keeps this
-- prelude's functions between calls, a script defines them again each time.
--
-- Every queue script gets all of the queue's keys, in the order of keys.QueueKeys:
local HIGH, NORMAL, DELAYED_HIGH, DELAYED_NORMAL
local LEASES, LEASED, LEASED_COUNT, LEASE_SEQ
local DEAD, DEAD_INFO, WAKE, OWNED
local UNIQUE, UNIQUE_ITEMS
local GROUP_ITEMS, GROUP_RING, GROUP_STATE
-- The prefixes of a queue's dynamic keys: '...:group:' and '...:batch:'.
local GROUP_BASE, BATCH_BASE
-- An entry is a 25-byte header then the payload: byte 1 'H' or 'N' (the priority to
-- return to), bytes 2-21 the item id, bytes 22-25 its earlier unacknowledged
-- deliveries (zero-padded decimal, saturating at 9999).
local CHUNK = 2000
-- Bound in begin: a function library is loaded where these tables are not reachable.
local byte, sub, format, concat
-- What one call has found out (has_unique, has_groups) or defers (count_delta).
local unique_known, unique_any, groups_known, groups_any, probed
-- When a number, settle adds its change of LEASED_COUNT here instead of writing it:
-- a script that settles and leases writes the count once (see lease.lua).
local count_delta

local function begin(keys)
  HIGH, NORMAL, DELAYED_HIGH, DELAYED_NORMAL = keys[1], keys[2], keys[3], keys[4]
  LEASES, LEASED, LEASED_COUNT, LEASE_SEQ = keys[5], keys[6], keys[7], keys[8]
  DEAD, DEAD_INFO, WAKE, OWNED = keys[9], keys[10], keys[11], keys[12]
  UNIQUE, UNIQUE_ITEMS = keys[13], keys[14]
  GROUP_ITEMS, GROUP_RING, GROUP_STATE = keys[15], keys[16], keys[17]
  byte, sub, format, concat = string.byte, string.sub, string.format, table.concat
  GROUP_BASE = sub(GROUP_RING, 1, #GROUP_RING - 4) -- GROUP_RING ends in 'ring'
  BATCH_BASE = sub(LEASES, 1, #LEASES - 6) .. 'batch:' -- LEASES ends in 'leases'
  unique_known, unique_any, groups_known, groups_any, probed = false, false, false, false, false
  count_delta = nil
end

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

-- Whether any entry of the queue holds a unique key (has_unique) or a group
-- (has_groups): at most one EXISTS per script call for both when the queue has
-- neither (the usual case), so such a queue pays nothing per entry.
local function probe_features()
  if probed then
    return
  end
  probed = true
  local found = redis.call('EXISTS', UNIQUE_ITEMS, GROUP_ITEMS)
  if found ~= 1 then -- both or neither; with one, its own EXISTS tells which
    unique_known, unique_any, groups_known, groups_any = true, found == 2, true, found == 2
  end
end
local function has_unique()
  if not unique_known then
    probe_features()
  end
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

-- Groups (push_grouped): GROUP_ITEMS maps the id of every grouped entry that lives
-- (ready, delayed, leased, dead) to its group; a ready grouped entry is in its
-- group's list of its priority, never in HIGH/NORMAL (see has_unique for the cost).
local function has_groups()
  if not groups_known then
    probe_features()
  end
  if not groups_known then
    groups_known, groups_any = true, redis.call('EXISTS', GROUP_ITEMS) == 1
  end
  return groups_any
end

-- Whether the queue is plain: no HIGH entry ready, nothing delayed, no unique key,
-- no group. One EXISTS over those keys answers all five, so a lease from a plain
-- queue (the usual case) pays one check, not one per feature (has_unique and
-- has_groups then need no call of their own).
local function plain_queue()
  local none = redis.call('EXISTS', HIGH, DELAYED_HIGH, DELAYED_NORMAL, UNIQUE_ITEMS, GROUP_ITEMS) == 0
  if none then
    unique_known, unique_any, groups_known, groups_any = true, false, true, false
  end
  return none
end

-- The entries of a large leased batch T are the list '<queue>:batch:T' (same hash
-- tag); those of a small one are packed (msgpack) into LEASES field T (see lease.lua).
local function batch_key(token)
  return BATCH_BASE .. token
end

-- The entries of batch `token`, in slot order: `packed` (its LEASES field T, read
-- with its record) when it is small, else its own list.
local function batch_entries(token, packed)
  if packed then
    return cmsgpack.unpack(packed)
  end
  return redis.call('LRANGE', batch_key(token), 0, -1)
end

local function group_list(g, high)
  return GROUP_BASE .. (high and 'H:' or 'N:') .. g
end

-- The group of an entry, or false for an ungrouped one.
local function group_of(entry)
  return redis.call('HGET', GROUP_ITEMS, item_id(entry))
end

-- Put entries of group g and one priority at its tail (or, with `head`, before its
-- head in their given order); a group that had no ready entry joins the ring.
local function group_put(g, high, entries, head)
  local list = group_list(g, high)
  if head then
    for k = #entries, 1, -1 do redis.call('LPUSH', list, entries[k]) end
  else
    for i = 1, #entries, CHUNK do
      redis.call('RPUSH', list, unpack(entries, i, math.min(i + CHUNK - 1, #entries)))
    end
  end
  local n = #entries
  redis.call('HINCRBY', GROUP_STATE, high and '#H' or '#N', n)
  if redis.call('HINCRBY', GROUP_STATE, 'r:' .. g, n) == n then
    if redis.call('EXISTS', GROUP_RING) == 0 then
      redis.call('RPUSH', GROUP_RING, '') -- the ungrouped entries' place in the ring
    end
    redis.call('RPUSH', GROUP_RING, g)
  end
end

-- Count `n` (negative) ready entries of group g gone; returns its ready entries left.
local function group_took(g, high, n)
  redis.call('HINCRBY', GROUP_STATE, high and '#H' or '#N', n)
  local left = redis.call('HINCRBY', GROUP_STATE, 'r:' .. g, n)
  if left <= 0 then
    redis.call('HDEL', GROUP_STATE, 'r:' .. g)
  end
  return left
end

-- Whether group g may be leased now under limits {concurrency, rate_tasks, rate_seconds}.
local function group_open(g, limits, now)
  if limits[1] > 0 and tonumber(redis.call('HGET', GROUP_STATE, 'l:' .. g) or 0) >= limits[1] then
    return false
  end
  if limits[2] > 0 then
    local times = GROUP_BASE .. 't:' .. g
    local oldest = redis.call('LINDEX', times, -limits[2])
    if oldest and tonumber(oldest) > now - limits[3] then
      return false
    end
  end
  return true
end

-- One more leased entry of group g, leased at `now`.
local function group_leased(g, limits, now)
  redis.call('HINCRBY', GROUP_STATE, 'l:' .. g, 1)
  if limits[2] > 0 then
    local times = GROUP_BASE .. 't:' .. g
    redis.call('RPUSH', times, format('%.6f', now))
    redis.call('LTRIM', times, -limits[2], -1)
    redis.call('PEXPIRE', times, math.ceil(limits[3] * 1000) + 1000)
  end
end

-- Entries that leave their lease: their groups' slots come back (one HINCRBY per
-- group), and a lease waiting on a freed group is woken (the cap is push.lua's
-- WAKE_TOKENS); `gone` (acknowledged) entries leave the queue: their groups are forgotten.
local function group_unlease(entries, gone)
  if #entries == 0 then
    return
  end
  local ids = {}
  for k, e in ipairs(entries) do ids[k] = item_id(e) end
  local freed, order = {}, {}
  for i = 1, #ids, CHUNK do
    local j = math.min(i + CHUNK - 1, #ids)
    local found = redis.call('HMGET', GROUP_ITEMS, unpack(ids, i, j))
    for k = 1, #found do
      local g = found[k]
      if g then
        if not freed[g] then
          freed[g] = 0
          order[#order + 1] = g
        end
        freed[g] = freed[g] + 1
      end
    end
  end
  if #order == 0 then
    return
  end
  for _, g in ipairs(order) do
    if redis.call('HINCRBY', GROUP_STATE, 'l:' .. g, -freed[g]) <= 0 then
      redis.call('HDEL', GROUP_STATE, 'l:' .. g)
    end
  end
  if redis.call('EXISTS', GROUP_RING) == 1 then
    redis.call('RPUSH', WAKE, '1')
    redis.call('LTRIM', WAKE, -16, -1)
  end
  if gone then
    for i = 1, #ids, CHUNK do
      redis.call('HDEL', GROUP_ITEMS, unpack(ids, i, math.min(i + CHUNK - 1, #ids)))
    end
  end
end

-- Forget the groups of entries that leave the queue for good (popped, purged, removed).
local function group_forget(entries)
  if not has_groups() then
    return
  end
  for i = 1, #entries, CHUNK do
    local ids = {}
    for k = i, math.min(i + CHUNK - 1, #entries) do ids[#ids + 1] = item_id(entries[k]) end
    redis.call('HDEL', GROUP_ITEMS, unpack(ids))
  end
end

-- Up to `count` ready entries, one per ring member per round, from the ring's head
-- (where the previous call stopped); each visited member goes to the tail. `limits`
-- nil pops: no limits, no slots. A group left without ready entries leaves the ring;
-- the ring goes once only the ungrouped member is left.
local function ring_take(count, limits, now)
  local taken = {}
  local size = redis.call('LLEN', GROUP_RING)
  local idle = 0
  local took_high, took_normal = 0, 0
  while #taken < count and idle < size do
    -- The head member goes to the tail; one that has no ready entry left leaves.
    local g = redis.call('LMOVE', GROUP_RING, GROUP_RING, 'LEFT', 'RIGHT')
    local e = false
    if g == '' then
      e = redis.call('LPOP', HIGH) or redis.call('LPOP', NORMAL)
    elseif limits == nil or group_open(g, limits, now) then
      local high = true
      e = redis.call('LPOP', group_list(g, true))
      if not e then
        high, e = false, redis.call('LPOP', group_list(g, false))
      end
      local left = 0
      if e then
        if high then took_high = took_high + 1 else took_normal = took_normal + 1 end
        left = redis.call('HINCRBY', GROUP_STATE, 'r:' .. g, -1)
        if limits then group_leased(g, limits, now) end
      end
      if left <= 0 then -- not ready any more: leaves the ring (it is the tail now)
        redis.call('HDEL', GROUP_STATE, 'r:' .. g)
        redis.call('RPOP', GROUP_RING)
        size = size - 1
      end
    end
    if e then
      taken[#taken + 1] = e
      idle = 0
    else
      idle = idle + 1
    end
  end
  if took_high > 0 then redis.call('HINCRBY', GROUP_STATE, '#H', -took_high) end
  if took_normal > 0 then redis.call('HINCRBY', GROUP_STATE, '#N', -took_normal) end
  if size <= 1 then
    redis.call('DEL', GROUP_RING)
  end
  return taken
end

-- Limits as the client sends them: '' (none) or 'concurrency,rate_tasks,rate_seconds'.
local function parse_limits(text)
  local c, n, s = string.match(text, '^(%d+),(%d+),([%d.]+)$')
  return {tonumber(c) or 0, tonumber(n) or 0, tonumber(s) or 0}
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
  local grouped = has_groups()
  for k = #entries, 1, -1 do -- LPUSH puts its last argument first: go backwards
    local e = entries[k]
    local g = grouped and group_of(e)
    if g then
      group_put(g, is_high(e), {e}, true)
    elseif is_high(e) then high[#high + 1] = e else normal[#normal + 1] = e end
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
      if has_groups() then
        for k = i, j do
          local e = due[k]
          local g = group_of(e)
          if g then group_put(g, is_high(e), {e}, false) else redis.call('RPUSH', pair[2], e) end
        end
      else
        redis.call('RPUSH', pair[2], unpack(due, i, j))
      end
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

-- The fields of batch `token`'s record that settling it reads, in held_slots' order.
local function record_fields(token)
  return token .. ':f', token .. ':n', token .. ':o', token
end

-- Most pairs whose records settle_args reads in one HMGET (the rest read their own).
local RECORDS_READ_AHEAD = 16

-- One HMGET of LEASES for the fields `extra` (may be empty) then the records of the
-- pairs of ARGV from position `first` (see settle_args): returns the values of
-- `extra`, then per pair (by its position in ARGV) its record, or nil where a pair
-- repeats an earlier token (settling the earlier one changes that record: it is read
-- when its turn comes).
local function read_records(first, extra)
  local fields, seen, offsets = {}, {}, {}
  for k, f in ipairs(extra) do fields[k] = f end
  local last = math.min(#ARGV - 1, first + 2 * (RECORDS_READ_AHEAD - 1))
  for i = first, last, 2 do
    local token = ARGV[i]
    if not seen[token] then
      seen[token] = true
      local at = #fields
      offsets[i] = at
      fields[at + 1], fields[at + 2], fields[at + 3], fields[at + 4] = record_fields(token)
    end
  end
  if #fields == 0 then
    return {}, {}
  end
  local got = redis.call('HMGET', LEASES, unpack(fields))
  local recs = {}
  for i, at in pairs(offsets) do
    recs[i] = {got[at + 1], got[at + 2], got[at + 3], got[at + 4]}
  end
  return got, recs
end

-- The slots among `ranges` that batch `token` still holds: (held slots, flags, live,
-- owner, its packed entries when it is small). A batch that no longer exists
-- (acknowledged, or reclaimed after its lease expired) holds nothing: that is how a
-- stale owner is fenced off. `rec`: the record's fields (record_fields), when the
-- caller has read them already.
local function held_slots(token, ranges, rec)
  rec = rec or redis.call('HMGET', LEASES, record_fields(token))
  local flags, live = rec[1], tonumber(rec[2])
  if not flags then
    return {}, nil, 0, nil, nil
  end
  local n = #flags
  if live == n and ranges == '1-' .. n then -- the whole, untouched batch
    local all = {}
    for s = 1, n do all[s] = s end
    return all, flags, live, rec[3], rec[4]
  end
  local held = {}
  for _, s in ipairs(parse_slots(ranges, n)) do
    if byte(flags, s) == 49 then -- '1'
      held[#held + 1] = s
    end
  end
  return held, flags, live, rec[3], rec[4]
end

-- Stop holding `slots` of batch `token`; returns their entries when `want_entries`.
-- Without `want_entries` it is an acknowledgement: the entries' unique keys are freed.
local function settle(token, ranges, want_entries, rec)
  local held, flags, live, owner, packed = held_slots(token, ranges, rec)
  if #held == 0 then
    return 0, {}
  end
  local entries = {}
  if want_entries or has_unique() or has_groups() then
    local all = batch_entries(token, packed)
    if #held == #all then
      entries = all -- the whole batch, in slot order
    else
      for k, s in ipairs(held) do
        entries[k] = all[s]
      end
    end
  end
  if #held == live then
    redis.call('HDEL', LEASES, token, token .. ':f', token .. ':n', token .. ':o', token .. ':a')
    if not packed then
      redis.call('DEL', batch_key(token))
    end
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
  if count_delta then
    count_delta = count_delta - #held
  else
    redis.call('DECRBY', LEASED_COUNT, #held)
  end
  if has_groups() then
    group_unlease(entries, not want_entries)
  end
  if not want_entries then
    free(entries)
  end
  return #held, entries
end

-- Settle every (token, ranges) pair of ARGV from position `first`; returns the count
-- and, when `want_entries`, the entries in the order given. `recs`: the pairs'
-- records by position, read already (read_records); without it they are read here.
local function settle_args(first, want_entries, recs)
  if not recs then
    local _, read = read_records(first, {})
    recs = read
  end
  local count, entries = 0, {}
  for i = first, #ARGV - 1, 2 do
    local n, some = settle(ARGV[i], ARGV[i + 1], want_entries, recs[i])
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
