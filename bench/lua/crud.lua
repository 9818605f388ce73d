-- CRUD mix over nine resource types (Patient, Organization, Practitioner, Location,
-- Encounter, Observation, MedicationRequest, Condition, AllergyIntolerance).
--
-- Each request picks a type uniformly at random, then an operation:
--   40% read    GET    /fhir/{type}/{id}   id from the preloaded pool of that type
--   25% create  POST   /fhir/{type}        template body; the server assigns the id
--   25% update  PUT    /fhir/{type}/{id}   id from the preloaded pool (a new version)
--   10% delete  DELETE /fhir/{type}/{id}   an id this thread created earlier (taken from
--                                          the Location header of a 201), oldest first
-- A delete with nothing created yet is sent as a create instead (only at the very start).
-- Responses carry the representation (no Prefer header), as a default client sees them.
--
--   wrk ... -s bench/lua/crud.lua http://127.0.0.1:PORT -- ids.txt templates.tsv
-- ids.txt: "Type/id" lines; templates.tsv: "create|update <TAB> Type <TAB> one-line JSON"
-- (the update template has "id":"__ID__").
local dir = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
dofile(dir .. "common.lua")

local TYPES = {
  "Patient", "Organization", "Practitioner", "Location", "Encounter", "Observation",
  "MedicationRequest", "Condition", "AllergyIntolerance",
}
local pool = {}          -- type -> list of ids
local create_req = {}    -- type -> formatted POST request
local update_body = {}   -- type -> JSON with __ID__
local created = {}       -- FIFO of "Type/id" this thread created
local head, tail = 1, 0
local read_headers = {["Accept"] = "application/fhir+json"}
local write_headers = {
  ["Accept"] = "application/fhir+json",
  ["Content-Type"] = "application/fhir+json",
}

function init(args)
  seed_random()
  for _, t in ipairs(TYPES) do pool[t] = {} end
  for _, line in ipairs(read_lines(args[1])) do
    local t, i = line:match("^([^/]+)/(.+)$")
    if pool[t] then table.insert(pool[t], i) end
  end
  for _, line in ipairs(read_lines(args[2])) do
    local kind, t, json = line:match("^(%a+)\t(%a+)\t(.+)$")
    if kind == "create" then
      create_req[t] = wrk.format("POST", "/fhir/" .. t, write_headers, json)
    elseif kind == "update" then
      update_body[t] = json
    end
  end
  for _, t in ipairs(TYPES) do
    assert(#pool[t] > 0, "no ids of type " .. t)
    assert(create_req[t] and update_body[t], "no template for " .. t)
  end
end

local function create(t)
  count_op("create")
  return create_req[t]
end

function request()
  local t = TYPES[math.random(#TYPES)]
  local r = math.random(100)
  if r <= 40 then
    count_op("read")
    local ids = pool[t]
    return wrk.format("GET", "/fhir/" .. t .. "/" .. ids[math.random(#ids)], read_headers)
  elseif r <= 65 then
    return create(t)
  elseif r <= 90 then
    count_op("update")
    local ids = pool[t]
    local i = ids[math.random(#ids)]
    local body = update_body[t]:gsub("__ID__", i)
    return wrk.format("PUT", "/fhir/" .. t .. "/" .. i, write_headers, body)
  end
  if head > tail then
    count_op("create_for_delete")
    return create(t)
  end
  local target = created[head]
  created[head] = nil
  head = head + 1
  count_op("delete")
  return wrk.format("DELETE", "/fhir/" .. target, read_headers)
end

function response(status, headers, body)
  count_status(status, body)
  if status == 201 then
    local location = headers["location"] or headers["Location"] or ""
    local t, i = location:match("/fhir/(%a+)/([^/]+)/_history/")
    if t then
      tail = tail + 1
      created[tail] = t .. "/" .. i
      extra.created = (extra.created or 0) + 1
    end
  elseif status == 204 then
    extra.deleted = (extra.deleted or 0) + 1
  end
end
