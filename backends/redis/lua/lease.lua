-- lease.lua: lease available tasks, oldest ETA first, ties by name.
-- KEYS and ARGV[1]: see common.lua.
-- ARGV[2] most tasks   ARGV[3] lease length in µs
-- ARGV[4] 'any' | 'tag' (only ARGV[5]'s group) | 'oldest' (only the oldest task's group)
-- ARGV[5] tag ('' for untagged)
-- ARGV[6] max leases per task (0: unlimited; '': the value stored in meta)
-- ARGV[7] tombstone lifetime in µs, for tasks dropped after max leases
-- ARGV[8] response budget in bytes (0: none)   ARGV[9] bytes each task costs besides
--         its id, tag and payload (see `size` below)
-- ARGV[10] most tombstones kept (0: no bound), for tasks dropped after max leases
-- ARGV[11] '1': the call's first task is leased whatever its size; '0': no task past
--          the budget is (a call may then lease nothing)
-- Touches tasks, index, heads, dead, leased, meta, pending, dropped, letters, activity.
-- Returns {1 if the queue was unknown until now else 0, d,
--          d dropped tasks as id, dead letter record (see common.lua), ...,
--          then id, stored task, id, stored task, ... as stored after the lease}.
-- A paused queue (meta "paused") leases nothing and drops nothing.
--
-- Sizes first: a stored task holds its payload only when it is short (APART_BYTES), so
-- the budget is applied on a few bytes per task, and no long payload is read here: the
-- bridge reads those of the tasks returned (see KEYS[1] in common.lua).
-- Cost: O((k + d) log N) for k tasks leased and d dropped, whatever N tasks wait or
-- are leased already, because leased tasks sort after every available one.

-- Called once or more per task: locals, not two table reads each.
local find, match, sub = string.find, string.match, string.sub
local now, second = now_us()
local limit = tonumber(ARGV[2])
local new_eta = now + tonumber(ARGV[3])
local mode = ARGV[4]
-- The backend sends no budget where it cannot bind (a lease of one task that is leased
-- whatever its size).
local budget, overhead = 0, 0
if ARGV[8] ~= '0' then
  budget, overhead = tonumber(ARGV[8]), tonumber(ARGV[9])
end
local min_one = ARGV[11] == '1'
local settings = redis.call('HMGET', meta_key, 'created', 'paused', 'max_leases')
local unknown = 0
if not settings[1] then
  unknown = touch_queue(int(now))
end
if settings[2] == '1' then
  return {unknown, 0}
end
local max_leases = ARGV[6]
if max_leases == '' then
  max_leases = settings[3] or '0'
end
max_leases = max_leases == '0' and 0 or tonumber(max_leases) or 0
-- The response: the two counts, then each leased task's id and stored value (with
-- dropped tasks, `result` below puts their records before them).
local out = {unknown, 0}
local count = 0
local dropped = {}
local used = 0
-- Set once a task did not fit the budget: nothing after it is leased either, so the
-- call still returns the oldest tasks, and the one that did not fit stays available.
local full = false
-- A lease of 0 s puts a task back in range; never hand it out twice in one call. The ids
-- leased so far, as a set, made only once a member read may be one of them: most calls
-- never read one.
local taken

-- The first ETA that is not available now: '(' .. group .. ahead is the exclusive upper
-- bound of a group's available tasks, and '(' .. ahead that of available heads.
local ahead = eta16(now + 1)

-- The new ETA as it sorts in index members and as it sits in a stored task (the same
-- for every task leased here).
local new_eta16 = eta16_of(int(new_eta))
local new_eta_field = ':' .. new_eta16 .. ':'

-- By a lease count's text, the count after one more lease (false: the task is dropped
-- instead). Most tasks of a call share their count, and a table read costs a tenth of
-- tonumber() or int().
local next_count = {}

-- Removes and buries a task dropped after max leases, keeping its dead letter.
local function drop(id, packed, apart, enq, retries, taglen, tag_at)
  local ttl_us = tonumber(ARGV[7])
  redis.call('HDEL', tasks_key, id)
  if apart ~= '' then
    redis.call('HDEL', tasks_key, id .. ':' .. enq)
  end
  bury(id, now, ttl_us, tonumber(ARGV[10]))
  local size = #packed - tag_at - taglen + 1
  if apart ~= '' then
    size = tonumber(sub(packed, tag_at + taglen))
  end
  local letter = int(now) .. ':' .. retries .. ':' .. int(size) .. ':'
    .. int(taglen) .. ':' .. sub(packed, tag_at, tag_at + taglen - 1)
  redis.call('ZADD', dropped_key, int(now + ttl_us), id)
  redis.call('HSET', letters_key, id, letter)
  dropped[#dropped + 1] = id
  dropped[#dropped + 1] = letter
end

-- Leases from one group, in index order, up to the exclusive bound `stop`; returns how
-- many tasks it leased or dropped (a call that only dropped tasks still made progress).
-- Each batch of the index costs five commands whatever its size (ZRANGEBYLEX, HMGET,
-- ZREMRANGEBYLEX or ZREM, HSET, ZADD) instead of four per task; a task dropped after
-- max leases costs its own, and so do leaving `pending` (a task never leased whose
-- ETA was set ahead) and reading a payload stored apart.
-- A batch holds at most BATCH members, so that each command's arguments (two per task
-- for HSET and ZADD) stay well inside what unpack() can put on Lua's C stack. Each read
-- asks for one member more than the batch: the group's new head, which otherwise takes
-- a read of its own at the end.
local BATCH = 1000
local function lease_from(group, stop)
  local start = '[' .. group
  local leased_before = count
  local before = count + #dropped / 2
  local id_at = #group + 17
  -- Every task of the group has this tag length; what a task costs in the response
  -- besides its id and payload.
  local taglen = 0
  if group ~= '-' then
    taglen = #group - 3
  end
  local fixed = overhead + 6 * taglen
  -- A leased task's index member, but for its id.
  local new_member = group .. new_eta16
  -- The ETA (16 digits) of the group's first task once this call is done with it, when
  -- a batch showed it: the member after the batch, or the task that did not fit.
  local head
  while count < limit and not full do
    local want = math.min(limit - count, BATCH)
    local batch = redis.call('ZRANGEBYLEX', index_key, start, stop, 'LIMIT', '0', int(want + 1))
    head = nil
    if #batch > want then
      -- One member more than the batch: the next head, without a read of its own.
      head = sub(batch[want + 1], #group + 1, #group + 16)
      batch[want + 1] = nil
    end
    if #batch == 0 then
      break
    end
    start = '(' .. batch[#batch]
    -- `batch` keeps the members not leased before in this call, in place, and ends up as
    -- those leased or dropped: the members the index loses. `split`: how many were kept
    -- when the first one leased before came after a kept one.
    local ids, k, split = {}, 0, nil
    -- A task put back has the new ETA, the largest in range: those with it end the batch,
    -- after the `settled` first members (all of them while nothing was leased).
    local settled = #batch
    if count > 0 then
      while settled > 0 and find(batch[settled], new_member, 1, true) == 1 do
        settled = settled - 1
      end
      if settled < #batch and not taken then
        taken = {}
        for i = 3, 2 * count + 1, 2 do
          taken[out[i]] = true
        end
      end
    end
    for i = 1, #batch do
      local m = batch[i]
      local id = sub(m, id_at)
      if i > settled and taken[id] then
        if k > 0 and not split then
          split = k
        end
      else
        k = k + 1
        ids[k] = id
        batch[k] = m
      end
    end
    for j = #batch, k + 1, -1 do
      batch[j] = nil
    end
    if k > 0 then
      local stored = redis.call('HMGET', tasks_key, unpack(ids))
      -- The HSET's arguments are the response's own: id, value, id, value, ... from `first`.
      local first = 2 * count + 3
      local added, unpended = {}, nil
      local n = 0
      for i = 1, k do
        local id, packed = ids[i], stored[i]
        -- Only the ETA and the lease count change: the rest is copied as it is.
        local apart, enq, eta, retries, tail, _, tag_at = match(packed, TASK)
        -- The lease count after this lease, false for a task to drop.
        local after = next_count[retries]
        if after == nil then
          local leases = tonumber(retries)
          after = (max_leases == 0 or leases < max_leases) and int(leases + 1)
          next_count[retries] = after
        end
        if after and budget > 0 then
          -- An upper bound of what the task costs in the response: its payload in base64,
          -- its id, and its tag as if every byte were escaped (\u00XX, 6 bytes), plus the
          -- fields every task has. base64_bytes(payload_bytes(...)) of common.lua, written
          -- out here and in drop(): their two closures and calls cost 2 % of a lease of
          -- 100 tasks (3,418-3,450k against 3,356-3,373k instructions, --lua-only).
          local b = #packed - tag_at - taglen + 3
          if apart ~= '' then
            b = tonumber(sub(packed, tag_at + taglen)) + 2
          end
          local size = fixed + #id + (b - b % 3) / 3 * 4
          if (count > 0 or not min_one) and used + size > budget then
            -- It and every task after it stay as they are.
            full = true
            head = sub(batch[i], #group + 1, #group + 16)
            for j = k, i, -1 do
              batch[j] = nil
            end
            break
          end
          used = used + size
        end
        if not after then
          drop(id, packed, apart, enq, retries, taglen, tag_at)
        else
          if retries == '0' and eta ~= enq then
            unpended = unpended or {}
            unpended[#unpended + 1] = id
          end
          n = n + 2
          added[n - 1] = '0'
          added[n] = new_member .. id
          if taken then
            taken[id] = true
          end
          count = count + 1
          out[2 * count + 1] = id
          out[2 * count + 2] = apart .. enq .. new_eta_field .. after .. ':' .. sub(packed, tail)
        end
      end
      if #batch > 0 then
        if #batch == 1 or split and split < k then
          -- One member, or a member leased before in this call lies among them and stays.
          redis.call('ZREM', index_key, unpack(batch))
        else
          -- One range of the index: no per-member argument or lookup.
          redis.call('ZREMRANGEBYLEX', index_key, '[' .. batch[1], '[' .. batch[#batch])
        end
      end
      if unpended then
        redis.call('ZREM', pending_key, unpack(unpended))
      end
      if n > 0 then
        redis.call('HSET', tasks_key, unpack(out, first, 2 * count + 2))
        redis.call('ZADD', index_key, unpack(added))
      end
    end
  end
  if head then
    -- Tasks leased here went to the new ETA, which is never before the head's (an
    -- available task's ETA is now at the latest).
    if count > leased_before and new_eta16 < head then
      head = new_eta16
    end
    redis.call('ZADD', heads_key, head, group)
  else
    reset_head(group)
  end
  return count + #dropped / 2 - before
end

-- The group whose first task is the oldest available one (ties: the smaller name),
-- and where leasing from it must stop so that no other group's task is passed over.
local function oldest_group()
  -- Without WITHSCORES: writing a score costs more than the read itself, and the usual
  -- queue (untagged, or with one tag) has one group and needs none.
  local two = redis.call('ZRANGEBYSCORE', heads_key, '-inf', '(' .. ahead, 'LIMIT', '0', '2')
  if #two == 0 then
    return nil
  end
  local best = two[1]
  if #two == 1 then
    return best, '(' .. best .. ahead
  end
  local etas = redis.call('ZMSCORE', heads_key, best, two[2])
  local eta, next_eta = tonumber(etas[1]), tonumber(etas[2])
  if next_eta > eta then
    return best, '(' .. best .. eta16(next_eta)
  end
  -- Several groups start at the same ETA: the smallest first task name goes first.
  local best_id, runner_up
  best = nil
  for _, group in ipairs(redis.call('ZRANGEBYSCORE', heads_key, int(eta), int(eta))) do
    local id = string.sub(first_of(group), #group + 17)
    if best == nil or id < best_id then
      best, best_id, runner_up = group, id, best_id
    elseif runner_up == nil or id < runner_up then
      runner_up = id
    end
  end
  return best, '(' .. best .. eta16(eta) .. runner_up
end

if mode == 'tag' then
  local group = group_of(ARGV[5])
  lease_from(group, '(' .. group .. ahead)
elseif mode == 'oldest' then
  local group = oldest_group()
  if group then
    lease_from(group, '(' .. group .. ahead)
  end
else
  while count < limit and not full do
    local group, stop = oldest_group()
    if not group or lease_from(group, stop) == 0 then
      break
    end
  end
end

if #dropped > 0 then
  expire_letters(now)
  -- Like tombstones, the records live as long as the newest of them.
  local ttl_ms = int(math.floor(tonumber(ARGV[7]) / 1000))
  redis.call('PEXPIRE', dropped_key, ttl_ms)
  redis.call('PEXPIRE', letters_key, ttl_ms)
  note_activity(now, 'x', #dropped / 2)
end
if count > 0 then
  -- One count per second (stats and activity sum them by minute too); the first lease
  -- of each second starts a field: the moment to keep the hash small.
  if redis.call('HINCRBY', leased_key, 'l' .. second, count_text(count)) == count then
    redis.call('PEXPIRE', leased_key, '3600000')
    if redis.call('HLEN', leased_key) > 150 then
      leased_recently(now)
    end
  end
end
if #dropped == 0 then
  return out
end
local result = {unknown, #dropped / 2}
for _, value in ipairs(dropped) do
  result[#result + 1] = value
end
for i = 3, #out do
  result[#result + 1] = out[i]
end
return result
