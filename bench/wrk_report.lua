-- Appended by bench/run.py to a preamble that sets `bodies` (one or more JSON bodies,
-- sent in turn) and `headers`. Counts responses whose body holds "errors" and tallies the
-- x-switchyard-execution header ("?" when absent); done() prints one line of JSON.

wrk.method = "POST"
wrk.body = bodies[1]
for name, value in pairs(headers) do
  wrk.headers[name] = value
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  body_errors = 0
  paths = {}
  turn = 0
  prepared = {}
  for i, body in ipairs(bodies) do
    prepared[i] = wrk.format("POST", nil, nil, body)
  end
end

-- Defined at the top level (wrk looks for it once, in its main state), only for a mix.
if #bodies > 1 then
  function request()
    turn = turn % #prepared + 1
    return prepared[turn]
  end
end

function response(status, response_headers, body)
  if body and string.find(body, '"errors"', 1, true) then
    body_errors = body_errors + 1
  end
  local path = response_headers["x-switchyard-execution"]
    or response_headers["X-Switchyard-Execution"] or "?"
  paths[path] = (paths[path] or 0) + 1
end

function done(summary, latency, requests)
  local errors = 0
  local tally = {}
  for _, thread in ipairs(threads) do
    errors = errors + thread:get("body_errors")
    for path, count in pairs(thread:get("paths")) do
      tally[path] = (tally[path] or 0) + count
    end
  end
  local parts = {}
  for path, count in pairs(tally) do
    table.insert(parts, string.format('"%s": %d', string.gsub(path, '[^%w%-_?]', ''), count))
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, "read": %d, '
      .. '"write": %d, "status": %d, "timeout": %d, "body_errors": %d, "p50_us": %d, '
      .. '"p90_us": %d, "p99_us": %d, "max_us": %d, "paths": {%s}}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, errors, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, table.concat(parts, ", ")))
end
