-- Protected read by id: GET <path> with "Authorization: DPoP <token>", a pre-generated,
-- single-use DPoP proof per request (htm GET, htu the request URL, ath the token's hash, a
-- fresh iat and jti) and any extra request headers given (e.g. the access basis). Written
-- by bench/auth.py or bench/policy.py just before the run:
--   wrk ... -s bench/lua/auth-read.lua http://127.0.0.1:PORT -- /path/proofs.tsv THREADS \
--       ["nhn-access-basis: SAMTYKKE" ...]
-- The file's first line is the access token; every other line is "<path>\t<DPoP proof>"
-- (the paths are ids drawn uniformly at random). wrk thread i of THREADS sends lines i,
-- i + THREADS, ... once each, in order; a thread that runs out sends GET /bench-exhausted,
-- whose 404 marks the run as failed. ops.read counts the requests sent.
local dir = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
dofile(dir .. "common.lua")

local requests = {}
local next_request = 1
local exhausted

function init(args)
  local threads = tonumber(args[2]) or 1
  local lines = read_lines(args[1])
  local headers = {
    ["Accept"] = "application/fhir+json",
    ["Authorization"] = "DPoP " .. lines[1],
  }
  for i = 3, #args do
    local name, value = args[i]:match("^([^:]+):%s*(.*)$")
    assert(name, "a header is 'Name: value', not " .. args[i])
    headers[name] = value
  end
  for i = 1 + id, #lines, threads do
    local path, proof = lines[i]:match("^([^\t]+)\t(.+)$")
    headers["DPoP"] = proof
    requests[#requests + 1] = wrk.format("GET", path, headers)
  end
  exhausted = wrk.format("GET", "/bench-exhausted")
end

function request()
  local r = requests[next_request]
  if r == nil then
    count_op("exhausted")
    return exhausted
  end
  requests[next_request] = false -- sent: never again
  next_request = next_request + 1
  count_op("read")
  return r
end

function response(status, headers, body)
  count_status(status, body)
end
