-- lease.lua: lease available tasks, oldest ETA first, ties by name.
-- KEYS and ARGV[1]: see common.lua.
-- ARGV[2] most tasks   ARGV[3] lease length in µs
-- ARGV[4] 'any' | 'tag' (only ARGV[5]'s group) | 'oldest' (only the oldest task's group)
-- ARGV[5] tag ('' for untagged)
-- ARGV[6] max leases per task (0: unlimited; '': the value stored in meta)
-- ARGV[7] tombstone lifetime in µs, for tasks dropped after max leases
-- Touches tasks, index, heads, dead, leased, meta, pending, dropped, letters, activity.
-- Returns {1 if the queue was unknown until now else 0, d,
--          d dropped tasks as id, dead letter record (see common.lua), ...,
--          then id, packed task, id, packed task, ... as stored after the lease}.
-- A paused queue (meta "paused") leases nothing and drops nothing.
--
-- Cost: O((k + d) log N) for k tasks leased and d dropped, whatever N tasks wait or
-- are leased already, because leased tasks sort after every available one.

local now = now_us()
local limit = tonumber(ARGV[2])
local new_eta = now + tonumber(ARGV[3])
local mode = ARGV[4]
local ttl_us = tonumber(ARGV[7])
local settings = redis.call('HMGET', meta_key, 'created', 'paused', 'max_leases')
local unknown = 0
if not settings[1] then
  unknown = touch_queue(now)
end
if settings[2] == '1' then
  return {unknown, 0}
end
local max_leases = tonumber(ARGV[6]) or tonumber(settings[3]) or 0
local out = {}
local count = 0
local dropped = {}
-- A lease of 0 s puts a task back in range; never hand it out twice in one call.
local taken = {}

-- The exclusive upper bound of a group's tasks that are available now.
local function available(group)
  return '(' .. group .. eta16(now + 1)
end

-- Leases from one group, in index order, up to the exclusive bound `stop`; returns how
-- many tasks it leased or dropped (a call that only dropped tasks still made progress).
local function lease_from(group, stop)
  local start = '[' .. group
  local before = count + #dropped / 2
  while count < limit do
    local batch = redis.call('ZRANGEBYLEX', index_key, start, stop, 'LIMIT', 0, limit - count)
    if #batch == 0 then
      break
    end
    for _, m in ipairs(batch) do
      start = '(' .. m
      local id = string.sub(m, #group + 17)
      if not taken[id] then
        local packed = redis.call('HGET', tasks_key, id)
        local enq, eta, retries, taglen, body = unpack_task(packed)
        redis.call('ZREM', index_key, m)
        if max_leases > 0 and retries >= max_leases then
          redis.call('HDEL', tasks_key, id)
          bury(id, now, ttl_us)
          local letter = int(now) .. ':' .. int(retries) .. ':' .. int(#packed - body - taglen + 1) .. ':'
            .. int(taglen) .. ':' .. string.sub(packed, body, body + taglen - 1)
          redis.call('ZADD', dropped_key, int(now + ttl_us), id)
          redis.call('HSET', letters_key, id, letter)
          dropped[#dropped + 1] = id
          dropped[#dropped + 1] = letter
        else
          if retries == 0 and eta ~= enq then
            redis.call('ZREM', pending_key, id)
          end
          local tag = string.sub(packed, body, body + taglen - 1)
          local value = pack_task(enq, new_eta, retries + 1, tag) .. string.sub(packed, body + taglen)
          redis.call('HSET', tasks_key, id, value)
          redis.call('ZADD', index_key, 0, member_of(group, new_eta, id))
          taken[id] = true
          count = count + 1
          out[#out + 1] = id
          out[#out + 1] = value
        end
      end
    end
  end
  reset_head(group)
  return count + #dropped / 2 - before
end

-- The group whose first task is the oldest available one (ties: the smaller name),
-- and where leasing from it must stop so that no other group's task is passed over.
local function oldest_group()
  local two = redis.call('ZRANGEBYSCORE', heads_key, '-inf', int(now), 'WITHSCORES', 'LIMIT', 0, 2)
  if #two == 0 then
    return nil
  end
  local best = two[1]
  if #two == 2 then
    -- One group has tasks available: the usual queue, untagged or with one tag.
    return best, available(best)
  end
  local eta, next_eta = tonumber(two[2]), tonumber(two[4])
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
  lease_from(group_of(ARGV[5]), available(group_of(ARGV[5])))
elseif mode == 'oldest' then
  local group = oldest_group()
  if group then
    lease_from(group, available(group))
  end
else
  while count < limit do
    local group, stop = oldest_group()
    if not group or lease_from(group, stop) == 0 then
      break
    end
  end
end

if #dropped > 0 then
  expire_letters(now)
  -- Like tombstones, the records live as long as the newest of them.
  redis.call('PEXPIRE', dropped_key, int(math.floor(ttl_us / 1000)))
  redis.call('PEXPIRE', letters_key, int(math.floor(ttl_us / 1000)))
  note_activity(now, 'x', #dropped / 2)
end
if count > 0 then
  local second = math.floor(now / 1000000)
  redis.call('HINCRBY', leased_key, 'm' .. int(math.floor(second / 60)), count)
  -- The first lease of each second starts a field: the moment to keep the hash small.
  if redis.call('HINCRBY', leased_key, 's' .. int(second), count) == count then
    redis.call('PEXPIRE', leased_key, 3600000)
    if redis.call('HLEN', leased_key) > 150 then
      leased_recently(now)
    end
  end
end
local result = {unknown, #dropped / 2}
for _, value in ipairs(dropped) do
  result[#result + 1] = value
end
for _, value in ipairs(out) do
  result[#result + 1] = value
end
return result
