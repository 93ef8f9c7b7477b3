-- activity.lua: what happened to a queue, minute by minute, over the last hour.
-- KEYS and ARGV[1]: see common.lua.
-- Reads tasks, activity, leased.
-- Returns {now in µs, live tasks now, n, n fields and values of activity, then fields
-- and values of leased}; the caller picks the minutes it shows and works the depth at
-- the end of each minute back from the count now.

local now = now_us()
local counts = redis.call('HGETALL', activity_key)
local out = {int(now), task_count(), #counts}
for _, value in ipairs(counts) do
  out[#out + 1] = value
end
for _, value in ipairs(redis.call('HGETALL', leased_key)) do
  out[#out + 1] = value
end
return out
