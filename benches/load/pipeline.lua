-- Pipelining for wrk: each write carries DEPTH requests (default 16) for
-- wrk's target path; wrk counts every response and sends the next batch when
-- all of them are in.
--   wrk -s benches/load/pipeline.lua http://127.0.0.1:8080/plaintext -- 16
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "report.lua")

local batch

function init(args)
  local depth = tonumber(args[1]) or 16
  local one = wrk.format(nil, wrk.path)
  batch = string.rep(one, depth)
end

function request()
  return batch
end
