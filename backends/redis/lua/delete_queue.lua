-- delete_queue.lua: drop a queue with everything kept for it.
-- KEYS and ARGV[1]: see common.lua.
-- Touches every key of the queue.
-- Returns 'ok' | 'missing'

if not queue_exists() then
  return 'missing'
end
redis.call('UNLINK', unpack(KEYS))
return 'ok'
