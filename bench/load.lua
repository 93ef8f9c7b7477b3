-- load.lua: the wrk script of every throughput run; load.py reads the line done() prints.
--
-- Arguments after "--": METHOD PATH [BODY]
--   PATH may hold "{n}", replaced in each request by "<thread>-<count>" (1-1, 1-2, ...),
--   so that every DELETE names a task inserted beforehand, never one already deleted.
--   A BODY is sent as application/json.
-- Counted per thread and summed in done():
--   non_2xx  responses whose status is outside 200-299 (wrk itself counts only >= 400)
--   items    occurrences of '"id":' in response bodies: the tasks a lease returned
-- Without "{n}" the request is built once, which is what wrk does fastest.

local threads = {}
local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set('thread_id', thread_count)
  table.insert(threads, thread)
end

function init(args)
  non_2xx = 0
  items = 0
  wrk.method = args[1]
  if args[3] and args[3] ~= '' then
    wrk.body = args[3]
    wrk.headers['Content-Type'] = 'application/json'
  end
  local path = args[2]
  local at = string.find(path, '{n}', 1, true)
  if not at then
    wrk.path = path
    return
  end
  local head, tail = string.sub(path, 1, at - 1) .. thread_id .. '-', string.sub(path, at + 3)
  local count = 0
  request = function()
    count = count + 1
    return wrk.format(nil, head .. count .. tail)
  end
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non_2xx = non_2xx + 1
  end
  -- A plain find from match to match: gsub would build a copy of the body.
  local at = string.find(body, '"id":', 1, true)
  while at do
    items = items + 1
    at = string.find(body, '"id":', at + 5, true)
  end
end

function done(summary, latency, requests)
  local non, found = 0, 0
  for _, thread in ipairs(threads) do
    non = non + thread:get('non_2xx')
    found = found + thread:get('items')
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "non_2xx": %d, "items": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration, non, found, e.connect + e.read + e.write + e.timeout))
end
