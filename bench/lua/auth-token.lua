-- Token issuance: POST /connect/token (client_credentials, private_key_jwt, DPoP with the
-- server's nonce), each request with its own pre-generated client assertion and DPoP proof
-- (both are single-use). Written by bench/auth.py just before the run:
--   wrk ... -s bench/lua/auth-token.lua http://127.0.0.1:PORT -- /path/requests.tsv THREADS
-- Each line is "<DPoP proof>\t<form body>"; wrk thread i of THREADS sends lines i,
-- i + THREADS, i + 2 * THREADS, ... once each, in order. Should a thread run out (the
-- runner generates more lines than the run can use), it sends GET /bench-exhausted, whose
-- 404 marks the run as failed. A 200 counts as a token only if its body holds a DPoP
-- access token.
local dir = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
dofile(dir .. "common.lua")

local requests = {}
local next_request = 1
local exhausted

function init(args)
  local threads = tonumber(args[2]) or 1
  local lines = read_lines(args[1])
  for i = id, #lines, threads do
    local proof, body = lines[i]:match("^([^\t]+)\t(.+)$")
    requests[#requests + 1] = wrk.format("POST", "/connect/token", {
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["Accept"] = "application/json",
      ["DPoP"] = proof,
    }, body)
  end
  exhausted = wrk.format("GET", "/bench-exhausted")
  extra.tokens = 0
end

function request()
  local r = requests[next_request]
  if r == nil then
    count_op("exhausted")
    return exhausted
  end
  requests[next_request] = false -- sent: never again (and the memory can go)
  next_request = next_request + 1
  count_op("token")
  return r
end

function response(status, headers, body)
  if status == 200 and not (body:find('"access_token"', 1, true)
      and body:find('"token_type":"DPoP"', 1, true)) then
    status = 599 -- a 200 without a DPoP token: count it as an error
  end
  count_status(status, body)
  if status == 200 then extra.tokens = extra.tokens + 1 end
end
