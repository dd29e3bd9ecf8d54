-- wrk script: lease renewals (PUT /storage/v1/lease/:si) carrying the two
-- X-Tahoe-Authorization lines GBS needs, over storage indexes read from a file.
--
-- wrk ... -s renew.lua URL -- REQUESTS AUTHORIZATION [version]
--   REQUESTS: one line per share: "<si> <renew secret b64> <cancel secret b64>"
--   AUTHORIZATION: the `Authorization` value ("Tahoe-LAFS <swissnum base64>")
--   version: ask `GET /storage/v1/version` instead, on the same connections
--     (what the server's network path alone answers, no storage call)
-- done() prints one line for the bench to read:
--   leasedb-wrk requests=N duration_us=N status_errors=N socket_errors=N p50_us=N p99_us=N

local requests = {}
local next_request = 0

function init(args)
  local host = wrk.host .. ":" .. wrk.port
  for line in io.lines(args[1]) do
    local si, renew, cancel = line:match("^(%S+) (%S+) (%S+)$")
    if si then
      requests[#requests + 1] = table.concat({
        "PUT /storage/v1/lease/" .. si .. " HTTP/1.1",
        "Host: " .. host,
        "Authorization: " .. args[2],
        "X-Tahoe-Authorization: lease-renew-secret " .. renew,
        "X-Tahoe-Authorization: lease-cancel-secret " .. cancel,
        "Content-Length: 0",
        "", "",
      }, "\r\n")
    end
  end
  if args[3] == "version" then
    requests = { table.concat({
      "GET /storage/v1/version HTTP/1.1",
      "Host: " .. host,
      "Authorization: " .. args[2],
      "", "",
    }, "\r\n") }
  end
  assert(#requests > 0, "no requests in " .. args[1])
  -- Threads start at different places in the list.
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16))
  next_request = math.random(#requests) - 1
end

function request()
  next_request = next_request % #requests + 1
  return requests[next_request]
end

function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    "leasedb-wrk requests=%d duration_us=%d status_errors=%d socket_errors=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
