-- set_queue.lua: change one setting of an existing queue.
-- KEYS and ARGV[1]: see common.lua.
-- ARGV[2] 'max_leases' ('0': unlimited) | 'paused' ('1' or '0')   ARGV[3] its value
-- Touches meta.
-- Returns {'ok', 1 if the queue was known by its tasks alone until now else 0} | {'missing'}

local now = now_us()
if not queue_exists() then
  return {'missing'}
end
local unknown = touch_queue(int(now))
redis.call('HSET', meta_key, ARGV[2], ARGV[3])
return {'ok', unknown}
