-- Shared by the wrk scripts: thread registry, response status counting, and one JSON
-- report line ("BENCH_RESULT {...}") printed by done() for bench/run.py to parse.
--
-- Every thread counts responses by status; anything outside 2xx is an error. The first
-- few error bodies are kept so a failing run can be diagnosed.

local threads = {}
local next_id = 1

-- per-thread state (each wrk thread has its own Lua state)
status_counts = {}
errors = 0
error_samples = {}
ops = {}      -- requests issued, by operation name (scripts fill it)
extra = {}    -- script-specific counters (e.g. resources created by a transaction)

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function seed_random()
  math.randomseed(os.time() * 1000 + (id or 0) * 7919)
  for _ = 1, 10 do math.random() end
end

function count_op(name)
  ops[name] = (ops[name] or 0) + 1
end

function count_status(status, body)
  local key = tostring(status)
  status_counts[key] = (status_counts[key] or 0) + 1
  if status < 200 or status > 299 then
    errors = errors + 1
    if #error_samples < 5 then
      table.insert(error_samples, key .. " " .. string.sub(body or "", 1, 400))
    end
  end
end

function read_lines(path)
  local lines = {}
  local f = assert(io.open(path, "r"), "cannot open " .. path)
  for line in f:lines() do
    if line ~= "" then lines[#lines + 1] = line end
  end
  f:close()
  return lines
end

local function encode(value)
  local kind = type(value)
  if kind == "number" then
    if value ~= value or value == math.huge or value == -math.huge then return "null" end
    return string.format("%.17g", value)
  elseif kind == "boolean" then
    return tostring(value)
  elseif kind == "string" then
    local escaped = value:gsub('[%c"\\]', function(c)
      return string.format("\\u%04x", string.byte(c))
    end)
    return '"' .. escaped .. '"'
  elseif kind == "table" then
    local parts = {}
    if #value > 0 then
      for _, item in ipairs(value) do parts[#parts + 1] = encode(item) end
      return "[" .. table.concat(parts, ",") .. "]"
    end
    for k, v in pairs(value) do parts[#parts + 1] = encode(tostring(k)) .. ":" .. encode(v) end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  return "null"
end

local function add_into(total, part)
  for k, v in pairs(part or {}) do total[k] = (total[k] or 0) + v end
end

function done(summary, latency, requests)
  local statuses, op_counts, extras, samples = {}, {}, {}, {}
  local error_total = 0
  for _, thread in ipairs(threads) do
    add_into(statuses, thread:get("status_counts"))
    add_into(op_counts, thread:get("ops"))
    add_into(extras, thread:get("extra"))
    error_total = error_total + (thread:get("errors") or 0)
    for _, s in ipairs(thread:get("error_samples") or {}) do
      if #samples < 5 then samples[#samples + 1] = s end
    end
  end
  local percentiles = {}
  for _, p in ipairs({50, 75, 90, 95, 99, 99.9}) do
    percentiles[tostring(p)] = latency:percentile(p)
  end
  local report = {
    duration_us = summary.duration,
    requests = summary.requests,
    bytes = summary.bytes,
    socket_errors = summary.errors,
    latency_us = {
      min = latency.min, max = latency.max, mean = latency.mean, stdev = latency.stdev,
      percentiles = percentiles,
    },
    statuses = statuses,
    non_2xx = error_total,
    error_samples = samples,
    ops = op_counts,
    extra = extras,
  }
  io.write("BENCH_RESULT " .. encode(report) .. "\n")
end
