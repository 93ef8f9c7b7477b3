-- purge.lua: delete every task of a queue, leased or not, without tombstones.
-- KEYS and ARGV[1]: see common.lua.
-- Touches tasks, index, heads, pending, activity.
-- Returns how many tasks there were, or -1 when the queue is unknown.

local now = now_us()
if not queue_exists() then
  return -1
end
local count = redis.call('HLEN', tasks_key)
-- UNLINK frees a large queue's memory off the main thread.
redis.call('UNLINK', tasks_key, index_key, heads_key, pending_key)
note_activity(now, 'd', count)
return count
