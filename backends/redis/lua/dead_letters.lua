-- dead_letters.lua: the tasks dropped after max leases that are still kept.
-- KEYS and ARGV[1]: see common.lua.
-- ARGV[2] most records
-- Reads dropped, letters; forgets records whose window ended.
-- Returns {id, record, ...}, the most recently dropped first (record: see common.lua).

local now = now_us()
expire_letters(now)
local out = {}
local ids = redis.call('ZREVRANGEBYSCORE', dropped_key, '+inf', '(' .. int(now), 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGET', letters_key, id)
end
return out
