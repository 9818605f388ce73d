-- Transaction ingest: POST /fhir with pre-generated patient transaction Bundles (about 50
-- resources each, internal urn:uuid references), Prefer: return=minimal.
-- Each thread cycles through the files listed in the index file, from its own offset.
-- Resources written are counted from the response Bundles ("201 Created" / "200 OK"
-- entry statuses) into extra.resources.
--   wrk ... -s bench/lua/ingest.lua http://127.0.0.1:PORT -- bundles/index.txt
local dir = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
dofile(dir .. "common.lua")

local requests = {}
local n = 0

function init(args)
  seed_random()
  local headers = {
    ["Accept"] = "application/fhir+json",
    ["Content-Type"] = "application/fhir+json",
    ["Prefer"] = "return=minimal",
  }
  for _, path in ipairs(read_lines(args[1])) do
    local f = assert(io.open(path, "rb"), "cannot open " .. path)
    local body = f:read("*a")
    f:close()
    requests[#requests + 1] = wrk.format("POST", "/fhir", headers, body)
  end
  n = math.floor(#requests * ((id or 1) - 1) / 4)
end

function request()
  n = n + 1
  count_op("transaction")
  return requests[(n % #requests) + 1]
end

function response(status, headers, body)
  count_status(status, body)
  if status == 200 then
    local _, written = body:gsub('"status":"20[01] ', "")
    extra.resources = (extra.resources or 0) + written
  end
end
