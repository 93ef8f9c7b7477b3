-- insert.lua: store a new task.
-- KEYS and ARGV[1]: see common.lua.
-- ARGV[2] id   ARGV[3] payload   ARGV[4] tag ('' for none)
-- ARGV[5] requested ETA in µs (0 or a past time: now)
-- ARGV[6] the furthest ETA allowed, in µs after now
-- Touches tasks, index, heads, pending, meta, activity; purges expired tombstones.
-- Returns {'ok', enqueue, eta, 1 if the queue was unknown until now else 0}
--       | {'duplicate', 'live' | 'tombstoned'} | {'too_late', latest ETA allowed}

local now = now_us()
local id = ARGV[2]
purge_tombstones(now)
if redis.call('HEXISTS', tasks_key, id) == 1 then
  return {'duplicate', 'live'}
end
if is_tombstoned(id, now) then
  return {'duplicate', 'tombstoned'}
end
local eta = tonumber(ARGV[5])
local latest = now + tonumber(ARGV[6])
if eta > latest then
  return {'too_late', int(latest)}
end
if eta < now then
  eta = now
end
local tag = ARGV[4]
local group = group_of(tag)
redis.call('HSET', tasks_key, id, pack_task(now, eta, 0, tag) .. ARGV[3])
redis.call('ZADD', index_key, 0, member_of(group, eta, id))
local head = redis.call('ZSCORE', heads_key, group)
if not head or tonumber(head) > eta then
  redis.call('ZADD', heads_key, int(eta), group)
end
if eta ~= now then
  redis.call('ZADD', pending_key, int(eta), id)
end
note_activity(now, 'i', 1)
return {'ok', int(now), int(eta), touch_queue(now)}
