-- common.lua: helpers for the other scripts here. The loader puts in front of each
-- script the definitions below that it uses (see backends/redis/lua_helpers.py), so this file
-- holds top-level `local` definitions only, each with its comment just above it.
--
-- Every script receives the same ten keys, all under one cluster hash tag:
--   KEYS[1] tasks    hash  id -> the stored task (TASK below):
--                          "ENQUEUE:ETA:RETRIES:TAGLEN:" .. tag .. payload, or, for a
--                          payload of more than APART_BYTES, "#" .. the same header ..
--                          tag .. the payload's length, and the payload apart under
--                          id .. ':' .. ENQUEUE (no id holds ':', and a name used
--                          again never meets the payload of its predecessor); the
--                          index, not this hash, counts the tasks
--   KEYS[2] index    zset  every task, score 0, member GROUP .. ETA (16 digits) .. id,
--                          so that the lexicographic order is (group, ETA, id)
--   KEYS[3] heads    zset  GROUP -> ETA of the group's first task
--   KEYS[4] dead     zset  tombstoned id -> when its tombstone ends (µs)
--   KEYS[5] leased   hash  "l<second>" -> tasks leased in that second, the one count a
--                          lease writes; "m<minute>" -> the seconds of that minute once
--                          they left the last minute, folded into one (see leased_recently)
--   KEYS[6] meta     hash  the queue's settings: "created" (µs), "paused" ("1"),
--                          "max_leases" ("0": unlimited); exists while the queue does
--   KEYS[7] pending  zset  id -> ETA of tasks never leased whose ETA was ahead when it
--                          was set (inserted for later, or renewed before a first lease)
--   KEYS[8] dropped  zset  id of a task dropped after max leases -> when its record ends
--   KEYS[9] letters  hash  id -> "DROPPED:LEASES:SIZE:TAGLEN:" .. tag, for `dropped`
--   KEYS[10] activity hash "i<minute>" / "d<minute>" / "x<minute>" -> tasks inserted /
--                          deleted or purged / dropped after max leases in that minute
-- and ARGV[1]: µs added to the server's clock (0, except in tests that move time on).
--
-- Times are µs since the epoch, read from the server so that every bridge process
-- agrees on them. GROUP is "-" for untagged tasks and otherwise the tag's byte length in
-- three digits followed by the tag: no group name is a prefix of another, so a group's
-- members are exactly the index range [GROUP, GROUP .. ":").
-- A task is in `pending` only if its ETA differs from its enqueue time and it was never
-- leased, so the usual task (available at once) costs nothing there.
-- Numbers reach Redis only through int() or as string constants ('0'): Lua 5.1 writes
-- a bare number with 14 significant digits, which would round a timestamp, and through
-- the C library's floating-point formatting, which costs more than the command.
-- Each int() and tonumber() costs about as much as a small command's own work in Redis
-- (C's printf and strtod), so the hot scripts format a number once and reuse its text,
-- and compare texts where they can: Lua's strings are interned, so `==` on two is one
-- comparison of pointers.

local tasks_key = KEYS[1]
local index_key = KEYS[2]
local heads_key = KEYS[3]
local dead_key = KEYS[4]
local leased_key = KEYS[5]
local meta_key = KEYS[6]
local pending_key = KEYS[7]
local dropped_key = KEYS[8]
local letters_key = KEYS[9]
local activity_key = KEYS[10]
local MINUTE_US = 60000000

local function int(n)
  return string.format('%d', n)
end

-- The time in µs, and its second as int() writes it.
local function now_us()
  local t = redis.call('TIME')
  if ARGV[1] == '0' then
    return tonumber(t[1]) * 1000000 + tonumber(t[2]), t[1]
  end
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2]) + tonumber(ARGV[1])
  return now, int(math.floor(now / 1000000))
end

local function eta16(eta)
  return string.format('%016d', eta)
end

-- eta16 of a time that int() wrote: the same text for every time from 2001 to 2286.
local function eta16_of(text)
  if #text == 16 then
    return text
  end
  return eta16(tonumber(text))
end

-- A count as Redis takes it: int(), the usual 1 without the formatting.
local function count_text(n)
  if n == 1 then
    return '1'
  end
  return int(n)
end

local function group_of(tag)
  if tag == '' then
    return '-'
  end
  return string.format('%03d', #tag) .. tag
end

local function member_of(group, eta, id)
  return group .. eta16(eta) .. id
end

-- A payload longer than this is stored apart from its task's header (KEYS[1]), so that
-- a lease or list learns every task's size and tag from a few bytes, and no script reads
-- a long payload: the bridge reads those it returns after the script, with HMGET (a
-- payload read through Lua costs Redis some twenty times a plain read: copies and fresh
-- pages). A shorter payload shares its header's string, which costs no memory beyond
-- the payload's own allocation, where the second hash entry costs 155 bytes a task
-- (used_memory over 20,000 tasks of 4,096 and of 4,097 bytes: 5,350 and 5,505).
local APART_BYTES = 4096

-- The stored task's grammar, the one decoder of the scripts: captures '#' when the
-- payload is apart (else ''), the enqueue time, ETA and lease count (texts), the
-- position of the tag's length, the tag's length (text), the position of the tag.
local TASK = '^(#?)(%d+):(%d+):(%d+):()(%d+):()'

-- A stored task's header as numbers, and where its tag starts.
local function unpack_task(packed)
  local _, enq, eta, retries, _, taglen, tag_at = string.match(packed, TASK)
  return tonumber(enq), tonumber(eta), tonumber(retries), tonumber(taglen), tag_at
end

-- The length of a stored task's payload, from what `TASK` captured (taglen a number).
local function payload_bytes(packed, apart, taglen, tag_at)
  if apart == '' then
    return #packed - tag_at - taglen + 1
  end
  return tonumber(string.sub(packed, tag_at + taglen))
end

-- What a payload of n bytes costs in base64: 4 bytes per 3, rounded up (n + 2 - (n + 2)
-- % 3 is a multiple of 3, so the division is exact and math.ceil() not needed).
local function base64_bytes(n)
  local b = n + 2
  return (b - b % 3) / 3 * 4
end

-- A stored task without a payload that it holds itself (one kept apart is not in it).
local function without_payload(packed)
  local apart, _, _, _, _, taglen, tag_at = string.match(packed, TASK)
  if apart ~= '' then
    return packed
  end
  return string.sub(packed, 1, tag_at + tonumber(taglen) - 1)
end

-- A stored task with a new ETA and lease count (texts, as int() writes them).
local function restamp(packed, eta, retries)
  local apart, enq, _, _, tail = string.match(packed, TASK)
  return apart .. enq .. ':' .. eta .. ':' .. retries .. ':' .. string.sub(packed, tail)
end

-- A new task as stored, from the texts of its times, its tag and its payload; and, for
-- a payload to keep apart, its field (else nil).
local function pack_task(id, enq, eta, tag, payload)
  local taglen = '0'
  if tag ~= '' then
    taglen = int(#tag)
  end
  if #payload > APART_BYTES then
    return '#' .. enq .. ':' .. eta .. ':0:' .. taglen .. ':' .. tag .. int(#payload), id .. ':' .. enq
  end
  return enq .. ':' .. eta .. ':0:' .. taglen .. ':' .. tag .. payload, nil
end

local function first_of(group)
  return redis.call('ZRANGEBYLEX', index_key, '[' .. group, '(' .. group .. ':', 'LIMIT', '0', '1')[1]
end

-- After a group changed, record the ETA of its first task, or forget the empty group.
-- `removed`, when the change was only that this index member went: if a member before
-- it is left, the first task and so its record stayed as they were.
local function reset_head(group, removed)
  local first = first_of(group)
  if not first then
    redis.call('ZREM', heads_key, group)
  elseif not (removed and first < removed) then
    redis.call('ZADD', heads_key, string.sub(first, #group + 1, #group + 16), group)
  end
end

-- Removes a task (and its payload) from tasks, index and pending; returns its group and
-- index member. It reads the header as texts: only the tag's length is needed as a number.
local function remove_task(id, packed)
  local apart, enq, eta, retries, _, taglen, tag_at = string.match(packed, TASK)
  local group = '-'
  if taglen ~= '0' then
    group = group_of(string.sub(packed, tag_at, tag_at + tonumber(taglen) - 1))
  end
  local member = group .. eta16_of(eta) .. id
  redis.call('HDEL', tasks_key, id)
  if apart ~= '' then
    redis.call('HDEL', tasks_key, id .. ':' .. enq)
  end
  redis.call('ZREM', index_key, member)
  if retries == '0' and eta ~= enq then
    redis.call('ZREM', pending_key, id)
  end
  return group, member
end

-- Marks the queue as known, returning 1 when it was not (the caller registers it).
-- `now`: the time as int() wrote it.
local function touch_queue(now)
  if redis.call('HSETNX', meta_key, 'created', now) == 1 then
    return 1
  end
  return 0
end

local function queue_exists()
  return redis.call('EXISTS', meta_key) == 1 or redis.call('EXISTS', tasks_key) == 1
end

local function task_count()
  return redis.call('ZCARD', index_key)
end

-- Adds n to this minute's count of `kind`: 'i' inserted, 'd' deleted (or purged), 'x'
-- dropped after max leases. Every change of the task count is one of these, so the depth
-- at the end of any minute of the hour follows from the count now (see activity.lua).
-- The first count of a kind in a minute keeps the hash another hour and, now and then,
-- drops the minutes that fell out of it.
local function note_activity(now, kind, n)
  local minute = math.floor(now / MINUTE_US)
  if n > 0 and redis.call('HINCRBY', activity_key, kind .. int(minute), count_text(n)) == n then
    redis.call('PEXPIRE', activity_key, 3660000)
    if redis.call('HLEN', activity_key) > 200 then
      for _, field in ipairs(redis.call('HKEYS', activity_key)) do
        if tonumber(string.sub(field, 2)) <= minute - 60 then
          redis.call('HDEL', activity_key, field)
        end
      end
    end
  end
end

-- Forgets dead letters whose window ended, a bounded number per call.
local function expire_letters(now)
  local gone = redis.call('ZRANGEBYSCORE', dropped_key, '-inf', int(now), 'LIMIT', '0', '1000')
  if #gone > 0 then
    redis.call('ZREM', dropped_key, unpack(gone))
    redis.call('HDEL', letters_key, unpack(gone))
  end
end

-- `now`: the time as int() wrote it.
local function purge_tombstones(now)
  redis.call('ZREMRANGEBYSCORE', dead_key, '-inf', now)
end

-- The set lives as long as its newest tombstone, so an idle queue leaves nothing behind.
-- At most `most` tombstones stay (0: no bound): past it, those that end first go, so
-- a queue's tombstones take bounded memory and the oldest names become usable again.
local function bury(id, now, ttl_us, most)
  redis.call('ZADD', dead_key, int(now + ttl_us), id)
  redis.call('PEXPIRE', dead_key, int(math.floor(ttl_us / 1000)))
  if most > 0 then
    local excess = redis.call('ZCARD', dead_key) - most
    if excess > 0 then
      redis.call('ZREMRANGEBYRANK', dead_key, '0', int(excess - 1))
    end
  end
end

-- When the tombstone of `id` ends (µs, as stored), or nil when the name is free.
local function tombstone_end(id, now)
  local ends = redis.call('ZSCORE', dead_key, id)
  if ends and tonumber(ends) > now then
    return ends
  end
  return nil
end

-- Sums the lease counts of the last minute (seconds) and of the last hour (minutes), and
-- keeps the hash small: a second that left the last minute is folded into its minute's
-- count, and what left the hour goes. The sums are the same whether a second was folded
-- or not, so a lease writes its second alone and the folding waits for this.
local function leased_recently(now)
  local second = math.floor(now / 1000000)
  local minute = math.floor(second / 60)
  local last_minute, last_hour = 0, 0
  local gone, folded = {}, {}
  local fields = redis.call('HGETALL', leased_key)
  for i = 1, #fields, 2 do
    local unit, at, n = string.sub(fields[i], 1, 1), tonumber(string.sub(fields[i], 2)), tonumber(fields[i + 1])
    if unit == 'm' and at > minute - 60 then
      last_hour = last_hour + n
    elseif unit == 'l' and at > second - 60 then
      last_minute = last_minute + n
      last_hour = last_hour + n
    elseif unit == 'l' and math.floor(at / 60) > minute - 60 then
      last_hour = last_hour + n
      gone[#gone + 1] = fields[i]
      folded[math.floor(at / 60)] = (folded[math.floor(at / 60)] or 0) + n
    else
      gone[#gone + 1] = fields[i]
    end
  end
  if #gone > 0 then
    redis.call('HDEL', leased_key, unpack(gone))
  end
  for at_minute, n in pairs(folded) do
    redis.call('HINCRBY', leased_key, 'm' .. int(at_minute), int(n))
  end
  return last_minute, last_hour
end
