-- Open the record: GET /fhir/Patient/<id>/$open-record (Kjernejournal's indicator, critical
-- information and document list in one request) with "Authorization: DPoP <token>", a
-- pre-generated, single-use DPoP proof per request (htm GET, htu the request URL, ath the
-- token's hash, a fresh iat and jti) and extra request headers (the access basis). Written
-- by bench/kjernejournal.py just before the run:
--   wrk ... -s bench/lua/open-record.lua http://127.0.0.1:PORT -- /path/proofs.tsv THREADS \
--       "nhn-access-basis: SAMTYKKE"
-- The file's first line is the access token; every other line is "<path>\t<DPoP proof>"
-- (patients drawn uniformly at random). wrk thread i of THREADS sends lines i, i + THREADS,
-- ... once each, in order; a thread that runs out sends GET /bench-exhausted, whose 404
-- marks the run as failed. ops.open counts the requests sent. Of each 200 response (a
-- collection Bundle: the indicator, then the entries shown) it counts the entries shown
-- (extra.entries), the records with critical information (extra.critical: indicator status
-- 4) and responses that are not such a Bundle (extra.malformed).
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
  count_op("open")
  return r
end

function response(status, headers, body)
  count_status(status, body)
  if status ~= 200 then return end
  if not body:find('"type":"collection"', 1, true) then
    extra.malformed = (extra.malformed or 0) + 1
    return
  end
  local _, shown = body:gsub('"fullUrl":', "")
  extra.entries = (extra.entries or 0) + shown
  extra.records = (extra.records or 0) + 1
  if body:find('"name":"status","valueInteger":4', 1, true) then
    extra.critical = (extra.critical or 0) + 1
  end
end
