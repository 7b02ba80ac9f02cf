-- wrk script for every benchmark scenario; the scenario is picked by the arguments after `--`:
--   wrk ... -s scenarios.lua <url> -- <scenario> <ids file or -> <email prefix>
-- scenarios: get_one (a random seeded id), create (a unique email each), mixed
-- (80 % get_one, 15 % list_page, 5 % create), static (the URL's own path, for list_page and
-- business_cached). `done` prints one line, "BENCH_RESULT {json}", that bench/loadgen.py reads.

local LIST_PATH = "/customers?limit=50"
local JSON_HEADERS = { ["Content-Type"] = "application/json" }

local threads = {}
local next_thread_id = 0

-- Runs in the main Lua state once per thread: give each thread its own id, so that
-- emails made by different threads can never be equal.
function setup(thread)
  next_thread_id = next_thread_id + 1
  thread:set("thread_id", next_thread_id)
  table.insert(threads, thread)
end

-- Per-thread state (each wrk thread has its own Lua state).
local ids = {}
local prefix = "bench"
local counter = 0
local list_request, static_request
creates = 0 -- global, so that `done` can read it with thread:get

local function load_ids(path)
  if path == nil or path == "-" then
    return
  end
  for line in io.lines(path) do
    if #line > 0 then
      ids[#ids + 1] = line
    end
  end
end

local function get_one()
  return wrk.format("GET", "/customers/" .. ids[math.random(#ids)])
end

-- Email = prefix (unique per wrk run) + thread id + per-thread counter: never the same twice.
local function create()
  counter = counter + 1
  creates = creates + 1
  local body = string.format(
    '{"name":"Bench Customer %d","email":"%s-t%d-%d@example.com",'
      .. '"phone":"+358 40 123 4567","businessId":"0112038-9"}',
    counter, prefix, thread_id, counter
  )
  return wrk.format("POST", "/customers", JSON_HEADERS, body)
end

local function list_page()
  return list_request
end

local function static()
  return static_request
end

local function mixed()
  local roll = math.random()
  if roll < 0.80 then
    return get_one()
  elseif roll < 0.95 then
    return list_page()
  end
  return create()
end

local PICKS = { get_one = get_one, create = create, mixed = mixed, static = static }
local pick

function init(args)
  pick = PICKS[args[1]]
  if pick == nil then
    error("unknown scenario: " .. tostring(args[1]))
  end
  load_ids(args[2])
  prefix = args[3] or prefix
  math.randomseed(os.time() * 1000 + thread_id)
  list_request = wrk.format("GET", LIST_PATH)
  static_request = wrk.format("GET", wrk.path)
  if (args[1] == "get_one" or args[1] == "mixed") and #ids == 0 then
    error("scenario " .. args[1] .. " needs a file of ids")
  end
end

function request()
  return pick()
end

function done(summary, latency, requests)
  local created = 0
  for _, thread in ipairs(threads) do
    created = created + (thread:get("creates") or 0)
  end
  local errors = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"non_2xx":%d,'
      .. '"connect":%d,"read":%d,"write":%d,"timeout":%d,"created":%d,'
      .. '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, errors.status,
    errors.connect, errors.read, errors.write, errors.timeout, created,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean
  ))
end
