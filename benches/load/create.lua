-- wrk: POST /api/links with a URL never sent before, per request.
--   wrk -s benches/load/create.lua http://127.0.0.1:8080
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "report.lua")

local run, counter = tostring(os.time()) .. tostring(math.random(1e6)), 0
local headers = { ["Content-Type"] = "application/json" }

function request()
  counter = counter + 1
  local body = string.format('{"url":"https://example.com/load/%s/%d"}', run, counter)
  return wrk.format("POST", "/api/links", headers, body)
end
