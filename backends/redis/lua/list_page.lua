-- list_page.lua: one page of tasks by ETA then name, with filters.
-- KEYS and ARGV[1]: see common.lua.
-- ARGV[2] most tasks   ARGV[3] '1' when only one tag is listed   ARGV[4] that tag
-- ARGV[5] start after this ETA (16 digits) .. id ('' from the start)
-- ARGV[6] '' | 'available' | 'leased' | 'delayed' (state_of in backends/base.py)
-- ARGV[7] '1' to include payloads
-- ARGV[8] response budget in bytes (0: none)   ARGV[9] bytes each task costs besides
--         its id, tag and payload (counted as lease.lua counts them)
-- Reads tasks, index, heads (never payloads kept apart: see APART_BYTES).
-- Returns {1 if more tasks follow else 0, id, stored task (see without_payload unless
-- payloads are asked for), ...}: the page ends before the first task past the budget,
-- but holds one task at least, so that paging goes on.
--
-- Cost: O(G k log N) for G tag groups (1 with a tag) and a page of k; a state filter
-- also reads the headers of the tasks it passes over.

local now = now_us()
local limit = tonumber(ARGV[2])
local after = ARGV[5]
local state = ARGV[6]
local groups
if ARGV[3] == '1' then
  groups = {group_of(ARGV[4])}
else
  groups = redis.call('ZRANGE', heads_key, 0, -1)
end
-- Tasks from this point on have their ETA ahead of now.
local ahead = eta16(now + 1)

-- From each group, the first limit + 1 tasks that pass the filters, as ETA .. id.
local found = {}
for _, group in ipairs(groups) do
  local start, stop = '[' .. group, '(' .. group .. ':'
  if after ~= '' then
    start = '(' .. group .. after
  end
  if state == 'available' then
    stop = '(' .. group .. ahead
  elseif state ~= '' and after < ahead then
    start = '[' .. group .. ahead
  end
  local kept = 0
  while kept <= limit do
    local batch = redis.call('ZRANGEBYLEX', index_key, start, stop, 'LIMIT', 0, limit + 1 - kept)
    if #batch == 0 then
      break
    end
    for _, m in ipairs(batch) do
      start = '(' .. m
      local entry = string.sub(m, #group + 1)
      local keep = true
      if state == 'leased' or state == 'delayed' then
        local _, _, retries = unpack_task(redis.call('HGET', tasks_key, string.sub(entry, 17)))
        keep = (retries > 0) == (state == 'leased')
      end
      if keep and kept <= limit then
        found[#found + 1] = entry
        kept = kept + 1
      end
    end
  end
end
table.sort(found)

local out = {0}
if #found > limit then
  out[1] = 1
end
local ids = {}
for i = 1, math.min(limit, #found) do
  ids[i] = string.sub(found[i], 17)
end
if #ids == 0 then
  return out
end
local bare = ARGV[7] ~= '1'
local budget, overhead, used = tonumber(ARGV[8]), tonumber(ARGV[9]), 0
local stored = redis.call('HMGET', tasks_key, unpack(ids))
for i, id in ipairs(ids) do
  local packed = stored[i]
  if budget > 0 then
    local apart, _, _, _, _, taglen, tag_at = string.match(packed, TASK)
    taglen = tonumber(taglen)
    local size = overhead + #id + 6 * taglen
    if not bare then
      size = size + base64_bytes(payload_bytes(packed, apart, taglen, tag_at))
    end
    if i > 1 and used + size > budget then
      out[1] = 1
      break
    end
    used = used + size
  end
  out[2 * i] = id
  if bare then
    packed = without_payload(packed)
  end
  out[2 * i + 1] = packed
end
return out
