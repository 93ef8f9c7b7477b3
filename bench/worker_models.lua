-- worker_models.lua: wrk's side of bench/worker_models.py.
--
-- Arguments after "--": MODE BASE, MODE one of insert | lease | delete, BASE the queue's
-- path. Insert names its tasks "<thread>-<n>"; delete walks the same names in the same
-- order, so (run for less time than insert) it deletes only tasks that exist. Lease
-- takes one task per call for 10 minutes.
-- done() prints one line, "RESULT {json}", that the driver reads.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  mode = args[1]
  base = args[2]
  counter = 0
  items = 0
end

function request()
  counter = counter + 1
  local name = "t" .. tid .. "-" .. counter
  if mode == "insert" then
    local body = '{"id":"' .. name .. '","payloadBase64":"cGF5bG9hZA=="}'
    return wrk.format("POST", base .. "/tasks", { ["Content-Type"] = "application/json" }, body)
  elseif mode == "lease" then
    return wrk.format("POST", base .. "/tasks/lease?numTasks=1&leaseSecs=600")
  end
  return wrk.format("DELETE", base .. "/tasks/" .. name)
end

function response(status, headers, body)
  if mode == "lease" and status == 200 and string.find(body, '"id"', 1, true) then
    items = items + 1
  end
end

function done(summary, latency, requests)
  local leased = 0
  for _, thread in ipairs(threads) do
    leased = leased + thread:get("items")
  end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "seconds": %.6f, "non_2xx": %d, "socket_errors": %d, "leased": %d, "p50_ms": %.3f, "p99_ms": %.3f}\n',
    summary.requests, summary.duration / 1e6, e.status, e.connect + e.read + e.write + e.timeout, leased,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
