-- delete.lua: remove a task, leased or not, and tombstone its name.
-- KEYS and ARGV[1]: see common.lua.
-- ARGV[2] id   ARGV[3] tombstone lifetime in µs
-- ARGV[4] the ETA of the caller's lease, in µs ('' deletes whatever the lease)
-- ARGV[5] most tombstones kept (0: no bound)
-- Touches tasks, index, heads, dead, pending, activity.
-- Returns 'ok' | 'missing' | 'tombstoned' | 'conflict'

local now = now_us()
local id = ARGV[2]
purge_tombstones(int(now))
local packed = redis.call('HGET', tasks_key, id)
if not packed then
  if tombstone_end(id, now) then
    return 'tombstoned'
  end
  return 'missing'
end
if ARGV[4] ~= '' then
  local _, eta = unpack_task(packed)
  if eta <= now or ARGV[4] ~= int(eta) then
    return 'conflict'
  end
end
reset_head(remove_task(id, packed))
bury(id, now, tonumber(ARGV[3]), tonumber(ARGV[5]))
note_activity(now, 'd', 1)
return 'ok'
