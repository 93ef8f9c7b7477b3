-- list.lua: the first tasks by ETA then name, without payloads unless asked.
-- KEYS and ARGV[1]: see common.lua.
-- ARGV[2] most tasks   ARGV[3] '1' to include payloads
-- Reads tasks, index, heads (never payloads kept apart: see APART_BYTES).
-- Returns {id, stored task (see without_payload unless payloads are asked for), ...}

local limit = tonumber(ARGV[2])
-- The first `limit` tasks lie in the groups whose first tasks are among the `limit`
-- oldest: those groups, and any tied with the last of them.
local last = redis.call('ZRANGE', heads_key, limit - 1, limit - 1, 'WITHSCORES')[2] or '+inf'
local found = {}
for _, group in ipairs(redis.call('ZRANGEBYSCORE', heads_key, '-inf', last)) do
  local members = redis.call('ZRANGEBYLEX', index_key, '[' .. group, '(' .. group .. ':', 'LIMIT', 0, limit)
  for _, m in ipairs(members) do
    -- ETA .. id sorts as (ETA, id).
    found[#found + 1] = string.sub(m, #group + 1)
  end
end
table.sort(found)
local ids = {}
for i = 1, math.min(limit, #found) do
  ids[i] = string.sub(found[i], 17)
end
if #ids == 0 then
  return {}
end
local stored = redis.call('HMGET', tasks_key, unpack(ids))
local out = {}
if ARGV[3] == '1' then
  -- As stored: the bridge reads the payloads kept apart after the script.
  for i, id in ipairs(ids) do
    out[2 * i - 1] = id
    out[2 * i] = stored[i]
  end
  return out
end
for i, id in ipairs(ids) do
  out[2 * i - 1] = id
  out[2 * i] = without_payload(stored[i])
end
return out
