-- stats.lua: the queue's settings and counts at this moment.
-- KEYS and ARGV[1]: see common.lua.
-- Reads tasks, index, heads, leased, meta, pending, dropped; folds the lease counts of
-- seconds past the last minute into their minute, drops lease counts and dead letters
-- that fell out of their window.
-- Returns {live tasks, oldest ETA in µs or '', leased in the last minute, leased in the
-- last hour, available now, delayed (never leased, ETA ahead), dead letters kept,
-- paused ('1' or ''), stored max leases ('' when none)}
--
-- Cost: O(G log N) for G tag groups with a task available now.

local now = now_us()
local oldest = redis.call('ZRANGE', heads_key, 0, 0, 'WITHSCORES')[2]
local minute, hour = leased_recently(now)
if oldest then
  oldest = int(tonumber(oldest))
else
  oldest = ''
end
local available = 0
for _, group in ipairs(redis.call('ZRANGEBYSCORE', heads_key, '-inf', int(now))) do
  available = available + redis.call('ZLEXCOUNT', index_key, '[' .. group, '(' .. group .. eta16(now + 1))
end
expire_letters(now)
local settings = redis.call('HMGET', meta_key, 'paused', 'max_leases')
return {
  task_count(),
  oldest,
  int(minute),
  int(hour),
  available,
  redis.call('ZCOUNT', pending_key, '(' .. int(now), '+inf'),
  redis.call('ZCARD', dropped_key),
  settings[1] or '',
  settings[2] or '',
}
