-- GET /json on the bare Starlette app (bench/ceiling_app.py), counting statuses.
local dir = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
dofile(dir .. "common.lua")

local req

function init(args)
  req = wrk.format("GET", "/json")
end

function request()
  return req
end

function response(status, headers, body)
  count_status(status, body)
end
