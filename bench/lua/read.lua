-- Read by id: GET /fhir/{type}/{id} for ids drawn uniformly at random from a file of
-- "Type/id" lines (written by bench/run.py into the server's data directory).
--   wrk ... -s bench/lua/read.lua http://127.0.0.1:PORT -- /path/to/ids.txt
local dir = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
dofile(dir .. "common.lua")

local requests = {}

function init(args)
  seed_random()
  local headers = {["Accept"] = "application/fhir+json"}
  for _, path in ipairs(read_lines(args[1])) do
    requests[#requests + 1] = wrk.format("GET", "/fhir/" .. path, headers)
  end
end

function request()
  return requests[math.random(#requests)]
end

function response(status, headers, body)
  count_status(status, body)
end
