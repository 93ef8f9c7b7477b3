-- stats.lua: queue counts at this moment.
-- KEYS and ARGV[1]: see common.lua.
-- Reads tasks, heads, leased; drops lease counts that fell out of their window.
-- Returns {live tasks, oldest ETA in µs or '', leased in the last minute, leased in the last hour}

local now = now_us()
local oldest = redis.call('ZRANGE', heads_key, 0, 0, 'WITHSCORES')[2]
local minute, hour = leased_recently(now)
if oldest then
  oldest = int(tonumber(oldest))
else
  oldest = ''
end
return {redis.call('HLEN', tasks_key), oldest, int(minute), int(hour)}
