-- clear_tombstones.lua: free every tombstoned name of a queue at once.
-- KEYS and ARGV[1]: see common.lua.
-- Touches dead.
-- Returns how many names were tombstoned.

local now = now_us()
purge_tombstones(int(now))
local count = redis.call('ZCARD', dead_key)
redis.call('DEL', dead_key)
return count
