-- purge.lua: delete every task of a queue, leased or not, and tombstone their names as
-- a delete does: App Engine's PurgeQueue left the names reserved (taskqueue_stub.py
-- keeps its task_name_archive), and so does Cloud Tasks'.
-- KEYS and ARGV[1]: see common.lua.
-- ARGV[2] tombstone lifetime in µs   ARGV[3] most tombstones kept (0: no bound)
-- Touches tasks, index, heads, dead, pending, activity.
-- Returns how many tasks there were, or -1 when the queue is unknown.
--
-- Cost: O(T log D) for the T names tombstoned, T = min(tasks, most tombstones kept), read
-- from the index a thousand at a time (so neither the reply nor unpack() grows with the
-- queue), then the UNLINK of the task keys, which frees their memory off Redis's main
-- thread. Past the bound, the names first in the index (by tag group, then ETA) are
-- the ones kept reserved, and the purge's tombstones displace older ones, as later
-- deletes do.

local BATCH = 1000
local now = now_us()
if not queue_exists() then
  return -1
end
local count = task_count()
local ttl_us = tonumber(ARGV[2])
local most = tonumber(ARGV[3])
local wanted = count
if most > 0 and most < count then
  wanted = most
end
purge_tombstones(int(now))
local ends = int(now + ttl_us)
local done = 0
while done < wanted do
  local members = redis.call('ZRANGE', index_key, done, math.min(done + BATCH, wanted) - 1)
  if #members == 0 then
    break
  end
  local scored = {}
  for i, member in ipairs(members) do
    -- A member is GROUP .. ETA (16 digits) .. id, GROUP '-' or a 3-digit length and the tag.
    local id_at = 18
    if string.sub(member, 1, 1) ~= '-' then
      id_at = 3 + tonumber(string.sub(member, 1, 3)) + 17
    end
    scored[2 * i - 1] = ends
    scored[2 * i] = string.sub(member, id_at)
  end
  redis.call('ZADD', dead_key, unpack(scored))
  done = done + #members
end
if done > 0 then
  redis.call('PEXPIRE', dead_key, int(math.floor(ttl_us / 1000)))
  local excess = redis.call('ZCARD', dead_key) - most
  if most > 0 and excess > 0 then
    redis.call('ZREMRANGEBYRANK', dead_key, '0', int(excess - 1))
  end
end
redis.call('UNLINK', tasks_key, index_key, heads_key, pending_key)
note_activity(now, 'd', count)
return count
