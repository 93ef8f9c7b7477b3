-- insert.lua: store a new task.
-- KEYS and ARGV[1]: see common.lua.
-- ARGV[2] id   ARGV[3] payload   ARGV[4] tag ('' for none)
-- ARGV[5] requested ETA in µs: 0 means now, and a past ETA is kept as given (so the
--         task sorts before those due now), as App Engine's taskqueue_stub.py keeps it
-- ARGV[6] the furthest ETA allowed, in µs after now
-- ARGV[7] '1': a past ETA means now instead (Cloud Tasks' rule for schedule_time)
-- Touches tasks, index, heads, pending, meta, activity; purges expired tombstones.
-- Returns {'ok', enqueue, eta, 1 if the queue was unknown until now else 0}
--       | {'duplicate', 'live'} | {'duplicate', 'tombstoned', when the tombstone ends (µs)}
--       | {'too_late', latest ETA allowed}
--
-- The usual insert (a payload of APART_BYTES at most) is eight commands: TIME, the
-- tombstone check, HSETNX (which is also the check for a live task of that name), the
-- purge, ZADD to the index, ZADD LT to the heads, HINCRBY of this minute's activity,
-- HSETNX of the queue's meta. Its numbers are formatted once each: the time, and the
-- ETA when it is not the time.

local now = now_us()
local id = ARGV[2]
local eta = tonumber(ARGV[5])
if eta == 0 or (eta < now and ARGV[7] == '1') then
  eta = now
elseif eta > now + tonumber(ARGV[6]) then
  -- A request that cannot be met is refused before its name is looked at, as the
  -- stub checks the ETA before it adds the task.
  return {'too_late', int(now + tonumber(ARGV[6]))}
end
-- A live task is never tombstoned (delete removes one, insert refuses the other), so
-- the two checks may come in either order.
local ends = tombstone_end(id, now)
if ends then
  return {'duplicate', 'tombstoned', ends}
end
local tag = ARGV[4]
local now_text = int(now)
local eta_text = now_text
if eta ~= now then
  eta_text = int(eta)
end
-- HSETNX is the script's first write on purpose: a Redis at maxmemory (noeviction)
-- refuses a script's first write that may grow memory (OOM), but lets every write
-- after any first one through, so a purge before it would let a full Redis grow.
local stored, apart = pack_task(id, now_text, eta_text, tag, ARGV[3])
if redis.call('HSETNX', tasks_key, id, stored) == 0 then
  return {'duplicate', 'live'}
end
if apart then
  redis.call('HSET', tasks_key, apart, ARGV[3])
end
purge_tombstones(now_text)
local group = group_of(tag)
redis.call('ZADD', index_key, '0', group .. eta16_of(eta_text) .. id)
-- LT: the group's head moves only to an earlier ETA; a new group is added.
redis.call('ZADD', heads_key, 'LT', eta_text, group)
if eta > now then
  redis.call('ZADD', pending_key, eta_text, id)
end
note_activity(now, 'i', 1)
return {'ok', now_text, eta_text, touch_queue(now_text)}
