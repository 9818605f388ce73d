-- ITI-65 Provide Document Bundle: POST /fhir with pre-generated transaction Bundles (a
-- SubmissionSet List, a DocumentReference and the Binary with the document), each with its
-- own single-use DPoP proof (htm POST, htu the FHIR base), "Authorization: DPoP <token>",
-- Prefer: return=minimal and extra request headers (the access basis). Written by
-- bench/kjernejournal.py just before the run:
--   wrk ... -s bench/lua/iti65.lua http://127.0.0.1:PORT -- /path/index.txt THREADS ENTRIES \
--       "nhn-access-basis: SAMTYKKE"
-- The index file's first line is the access token; every other line names a file of lines
-- "<DPoP proof>\t<Bundle JSON>". wrk thread i of THREADS sends the lines i, i + THREADS, ...
-- of those files taken in order, once each; a thread that runs out sends GET
-- /bench-exhausted, whose 404 marks the run as failed. ops.submit counts the requests sent;
-- extra.accepted the 200 responses whose Bundle has ENTRIES entries, each "201 Created";
-- extra.partial 200 responses that do not.
local dir = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
dofile(dir .. "common.lua")

local requests = {}
local next_request = 1
local exhausted
local entries

function init(args)
  local threads = tonumber(args[2]) or 1
  entries = tonumber(args[3]) or 3
  local index = read_lines(args[1])
  local headers = {
    ["Accept"] = "application/fhir+json",
    ["Content-Type"] = "application/fhir+json",
    ["Prefer"] = "return=minimal",
    ["Authorization"] = "DPoP " .. index[1],
  }
  for i = 4, #args do
    local name, value = args[i]:match("^([^:]+):%s*(.*)$")
    assert(name, "a header is 'Name: value', not " .. args[i])
    headers[name] = value
  end
  local n = 0
  for k = 2, #index do
    local f = assert(io.open(index[k], "rb"), "cannot open " .. index[k])
    for line in f:lines() do
      if line ~= "" then
        if n % threads == id - 1 then
          local tab = line:find("\t", 1, true)
          headers["DPoP"] = line:sub(1, tab - 1)
          requests[#requests + 1] = wrk.format("POST", "/fhir", headers, line:sub(tab + 1))
        end
        n = n + 1
      end
    end
    f:close()
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
  count_op("submit")
  return r
end

function response(status, headers, body)
  count_status(status, body)
  if status ~= 200 then return end
  local _, created = body:gsub('"status":"201 ', "")
  local _, all = body:gsub('"status":"', "")
  if created == entries and all == entries then
    extra.accepted = (extra.accepted or 0) + 1
  else
    extra.partial = (extra.partial or 0) + 1
    if #error_samples < 5 then
      table.insert(error_samples, "200 partial " .. string.sub(body, 1, 400))
    end
  end
end
