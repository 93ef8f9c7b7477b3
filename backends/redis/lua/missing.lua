-- missing.lua: why a task is not stored, for the 404 of a get.
-- KEYS and ARGV[1]: see common.lua.
-- ARGV[2] id
-- Reads dead, dropped, letters; forgets dead letters whose window ended.
-- Returns {'dropped', dead letter record (see common.lua)} | {'tombstoned'} | {'unknown'}

local now = now_us()
expire_letters(now)
local id = ARGV[2]
local ends = redis.call('ZSCORE', dropped_key, id)
if ends and tonumber(ends) > now then
  return {'dropped', redis.call('HGET', letters_key, id)}
end
if tombstone_end(id, now) then
  return {'tombstoned'}
end
return {'unknown'}
