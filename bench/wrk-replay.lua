-- Replays pre-signed raw HTTP requests (a Lua file returning a table of strings, written by
-- bench/lib/requests.mjs) in a cycle, and prints the summary as one JSON line.
-- Usage: wrk -t2 -c64 -d10s -s bench/wrk-replay.lua http://127.0.0.1:PORT -- requests.lua

local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local reqs, n, i

function init(args)
  reqs = dofile(args[1])
  n = #reqs
  i = (tid * 7919) % n
end

function request()
  i = i % n + 1
  return reqs[i]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d,"mean":%.1f}}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean))
end
