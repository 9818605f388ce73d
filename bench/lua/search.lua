-- FHIR search: GET of pre-built search paths (written by bench/search.py into the data
-- directory, one file per query class, built from values that are really stored).
--
--   wrk ... -s bench/lua/search.lua http://127.0.0.1:PORT -- token=/dir/search-token.tsv
--   wrk ... -s bench/lua/search.lua http://127.0.0.1:PORT -- token=... date=... has=...
--
-- Each request picks a class uniformly at random (with one argument: always that class),
-- then one of that class's paths uniformly at random. Lines are "path<TAB>expected..."; only
-- the path is used here. Every response other than 200 counts as an error (common.lua counts
-- non-2xx; a 2xx other than 200 is counted here). A 200 whose body has no "entry" is counted
-- in extra.empty: every path was built from stored data, so an empty page means a bug.
local dir = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
dofile(dir .. "common.lua")

local classes = {}   -- list of {name = ..., requests = {...}}

function init(args)
  seed_random()
  local headers = {["Accept"] = "application/fhir+json"}
  for _, arg in ipairs(args) do
    local name, path = arg:match("^([%w_-]+)=(.+)$")
    assert(name, "argument must be class=/path/to/file, got " .. arg)
    local requests = {}
    for _, line in ipairs(read_lines(path)) do
      local target = line:match("^([^\t]+)")
      requests[#requests + 1] = wrk.format("GET", target, headers)
    end
    assert(#requests > 0, "no search paths in " .. path)
    classes[#classes + 1] = {name = name, requests = requests}
  end
  assert(#classes > 0, "no query classes given")
end

function request()
  local class = classes[math.random(#classes)]
  count_op(class.name)
  return class.requests[math.random(#class.requests)]
end

function response(status, headers, body)
  count_status(status, body)
  if status ~= 200 and status >= 200 and status <= 299 then
    errors = errors + 1
    if #error_samples < 5 then
      table.insert(error_samples, tostring(status) .. " " .. string.sub(body or "", 1, 400))
    end
  elseif status == 200 and not string.find(body or "", '"entry"', 1, true) then
    extra.empty = (extra.empty or 0) + 1
  end
end
