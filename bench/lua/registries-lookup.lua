-- Person lookup by identifier: GET /fhir/Patient?identifier=urn:oid:...4.1|<fødselsnummer>,
-- every request expected to find exactly one Patient. Written by bench/registries.py.
--
--   wrk ... -s bench/lua/registries-lookup.lua http://127.0.0.1:PORT -- plain /dir/paths.tsv
--       each request a path drawn uniformly at random (lines "path<TAB>patient id"; only
--       the path is used); for the server with SAMHANDLING_UNPROTECTED_API=1
--   wrk ... -s bench/lua/registries-lookup.lua http://127.0.0.1:PORT -- signed /dir/f.tsv T
--       as auth-read.lua: the file's first line is the access token, every other line
--       "<path>\t<DPoP proof>" (single-use proofs); wrk thread i of T sends lines i, i + T,
--       ... once each, in order; a thread that runs out sends GET /bench-exhausted (404)
--
-- Every status other than 2xx is an error (common.lua). A 200 whose searchset does not hold
-- exactly one match entry is counted in extra.not_one (the runner flags the run).
local dir = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
dofile(dir .. "common.lua")

local MATCH = '"search":{"mode":"match"}'
local mode
local requests = {}
local next_request = 1
local exhausted

function init(args)
  mode = args[1]
  local headers = {["Accept"] = "application/fhir+json"}
  if mode == "plain" then
    seed_random()
    for _, line in ipairs(read_lines(args[2])) do
      requests[#requests + 1] = wrk.format("GET", line:match("^([^\t]+)"), headers)
    end
  elseif mode == "signed" then
    local threads = tonumber(args[3]) or 1
    local lines = read_lines(args[2])
    local authorization = "DPoP " .. lines[1]
    for i = 1 + id, #lines, threads do
      local path, proof = lines[i]:match("^([^\t]+)\t(.+)$")
      requests[#requests + 1] = wrk.format("GET", path, {
        ["Accept"] = "application/fhir+json",
        ["Authorization"] = authorization,
        ["DPoP"] = proof,
      })
    end
    exhausted = wrk.format("GET", "/bench-exhausted")
  else
    error("first argument must be plain or signed, got " .. tostring(mode))
  end
  assert(#requests > 0 or mode == "signed", "no lookup paths in " .. args[2])
end

function request()
  if mode == "plain" then
    count_op("lookup")
    return requests[math.random(#requests)]
  end
  local r = requests[next_request]
  if not r then
    count_op("exhausted")
    return exhausted
  end
  requests[next_request] = false -- sent: never again
  next_request = next_request + 1
  count_op("lookup")
  return r
end

local function matches(body)
  local n, start = 0, 1
  while true do
    local i = string.find(body, MATCH, start, true)
    if not i then return n end
    n = n + 1
    start = i + #MATCH
  end
end

function response(status, headers, body)
  count_status(status, body)
  if status == 200 and matches(body or "") ~= 1 then
    extra.not_one = (extra.not_one or 0) + 1
    if #error_samples < 5 then
      table.insert(error_samples, "200 not one match: " .. string.sub(body or "", 1, 300))
    end
  end
end
