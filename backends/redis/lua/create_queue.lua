-- create_queue.lua: create a queue with its settings.
-- KEYS and ARGV[1]: see common.lua.
-- ARGV[2] max leases per task ('0': unlimited)
-- Touches meta.
-- Returns 'ok' | 'exists' (created before, or holding tasks)

local now = now_us()
if queue_exists() then
  return 'exists'
end
redis.call('HSET', meta_key, 'created', int(now), 'max_leases', ARGV[2])
return 'ok'
