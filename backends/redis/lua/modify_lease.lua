-- modify_lease.lua: renew or release a lease the caller holds.
-- KEYS and ARGV[1]: see common.lua.
-- ARGV[2] id   ARGV[3] new lease length in µs (0 releases the task)
-- ARGV[4] the ETA the caller was given, in µs, as its proof of ownership ('' when none)
-- Touches tasks, index, heads, pending.
-- Returns {'ok', stored task} | {'missing'} | {'tombstoned'} | {'conflict'}

local now = now_us()
local id = ARGV[2]
local packed = redis.call('HGET', tasks_key, id)
if not packed then
  if tombstone_end(id, now) then
    return {'tombstoned'}
  end
  return {'missing'}
end
local _, eta, retries, taglen, tag_at = unpack_task(packed)
if eta <= now or (ARGV[4] ~= '' and ARGV[4] ~= int(eta)) then
  return {'conflict'}
end
local group = group_of(string.sub(packed, tag_at, tag_at + taglen - 1))
local new_eta = now + tonumber(ARGV[3])
local value = restamp(packed, int(new_eta), int(retries))
redis.call('HSET', tasks_key, id, value)
redis.call('ZREM', index_key, member_of(group, eta, id))
redis.call('ZADD', index_key, '0', member_of(group, new_eta, id))
reset_head(group)
if retries == 0 then
  -- Never leased: a task held back for later (delayed), or available again at once.
  if new_eta > now then
    redis.call('ZADD', pending_key, int(new_eta), id)
  else
    redis.call('ZREM', pending_key, id)
  end
end
return {'ok', value}
