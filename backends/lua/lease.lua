-- lease.lua: lease available tasks, oldest ETA first, ties by name.
-- KEYS and ARGV[1]: see common.lua.
-- ARGV[2] most tasks   ARGV[3] lease length in µs
-- ARGV[4] 'any' | 'tag' (only ARGV[5]'s group) | 'oldest' (only the oldest task's group)
-- ARGV[5] tag ('' for untagged)   ARGV[6] max leases per task (0: unlimited)
-- ARGV[7] tombstone lifetime in µs, for tasks dropped after max leases
-- Touches tasks, index, heads, dead, leased.
-- Returns {id, packed task, id, packed task, ...} as stored after the lease.
--
-- Cost: O((k + d) log N) for k tasks leased and d dropped, whatever N tasks wait or
-- are leased already, because leased tasks sort after every available one.

local now = now_us()
local limit = tonumber(ARGV[2])
local new_eta = now + tonumber(ARGV[3])
local mode = ARGV[4]
local max_leases = tonumber(ARGV[6])
local ttl_us = tonumber(ARGV[7])
local out = {}
local count = 0
-- A lease of 0 s puts a task back in range; never hand it out twice in one call.
local taken = {}

-- The exclusive upper bound of a group's tasks that are available now.
local function available(group)
  return '(' .. group .. eta16(now + 1)
end

-- The new ETA as it sorts in index members and as it sits in a stored task (the same
-- for every task leased here).
local new_eta16 = eta16(new_eta)
local new_eta_field = ':' .. int(new_eta) .. ':'

-- Leases from one group, in index order, up to the exclusive bound `stop`. Each batch of
-- the index costs five commands whatever its size (ZRANGEBYLEX, HMGET, ZREM, HSET, ZADD)
-- instead of four per task; a task dropped after max leases costs its own three.
local function lease_from(group, stop)
  local start = '[' .. group
  local before = count
  local id_at = #group + 17
  while count < limit do
    local batch = redis.call('ZRANGEBYLEX', index_key, start, stop, 'LIMIT', '0', int(limit - count))
    if #batch == 0 then
      break
    end
    start = '(' .. batch[#batch]
    local ids, members = {}, {}
    for _, m in ipairs(batch) do
      local id = string.sub(m, id_at)
      if not taken[id] then
        ids[#ids + 1] = id
        members[#members + 1] = m
      end
    end
    if #ids > 0 then
      local stored = redis.call('HMGET', tasks_key, unpack(ids))
      redis.call('ZREM', index_key, unpack(members))
      local values, added = {}, {}
      for i, id in ipairs(ids) do
        local packed = stored[i]
        -- Only the ETA and the lease count change: the rest is copied as it is.
        local enq, retries, tail = string.match(packed, '^(%d+):%d+:(%d+):()')
        retries = tonumber(retries)
        if max_leases > 0 and retries >= max_leases then
          redis.call('HDEL', tasks_key, id)
          bury(id, now, ttl_us)
        else
          local value = enq .. new_eta_field .. int(retries + 1) .. ':' .. string.sub(packed, tail)
          values[#values + 1] = id
          values[#values + 1] = value
          added[#added + 1] = '0'
          added[#added + 1] = group .. new_eta16 .. id
          taken[id] = true
          count = count + 1
          out[#out + 1] = id
          out[#out + 1] = value
        end
      end
      if #values > 0 then
        redis.call('HSET', tasks_key, unpack(values))
        redis.call('ZADD', index_key, unpack(added))
      end
    end
  end
  reset_head(group)
  return count - before
end

-- The group whose first task is the oldest available one (ties: the smaller name),
-- and where leasing from it must stop so that no other group's task is passed over.
local function oldest_group()
  local two = redis.call('ZRANGEBYSCORE', heads_key, '-inf', int(now), 'WITHSCORES', 'LIMIT', '0', '2')
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

if count > 0 then
  local second = math.floor(now / 1000000)
  redis.call('HINCRBY', leased_key, 'm' .. int(math.floor(second / 60)), int(count))
  -- The first lease of each second starts a field: the moment to keep the hash small.
  if redis.call('HINCRBY', leased_key, 's' .. int(second), int(count)) == count then
    redis.call('PEXPIRE', leased_key, '3600000')
    if redis.call('HLEN', leased_key) > 150 then
      leased_recently(now)
    end
  end
end
return out
