-- wrk done() hook: one machine-readable line per run, read by run.sh.
--
-- Latencies are in microseconds, *without* wrk's coordinated-omission
-- correction. wrk 4.1 calls stats_correct(latency, interval) before done(),
-- with interval = duration / (responses / connections): for each sample
-- N >= 2 * interval it adds synthetic samples at N - interval, N - 2 *
-- interval, ... while above interval. When pipelining, wrk records one
-- sample per batch but computes the interval per response, 16 times too
-- small: the corrected histogram is mostly synthetic and its high
-- percentiles come out as 0. The correction is undone here (exactly: it is
-- a known linear fill), so every mode reports the latencies wrk measured:
-- per request, or per batch (write until the batch's last response) with
-- pipeline.lua. wrk's own corrected `--latency` table stays in the raw output.
--
-- Needs WRK_CONNECTIONS (the -c value) in the environment; without it the
-- histogram is reported as wrk left it.

local function histogram(latency)
  local values, counts = {}, {}
  for i = 1, #latency do
    local value, count = latency(i)
    values[i] = value
    counts[value] = count
  end
  return values, counts
end

-- Inverts wrk's stats_correct: walking down from the largest value, a
-- value's synthetic count is the sum of the real counts above it at whole
-- multiples of the interval.
local function uncorrect(values, counts, interval)
  table.sort(values, function(a, b) return a > b end)
  local max, real = values[1] or 0, {}
  for _, n in ipairs(values) do
    local synthetic = 0
    if interval > 0 and n > interval then
      local above = n + interval
      while above <= max do
        if above >= 2 * interval then
          synthetic = synthetic + (real[above] or 0)
        end
        above = above + interval
      end
    end
    real[n] = counts[n] - synthetic
  end
  return real
end

local function percentiles(values, counts, ps)
  table.sort(values)
  local total = 0
  for _, v in ipairs(values) do total = total + counts[v] end
  local out = {}
  for j, p in ipairs(ps) do
    local rank, seen = math.max(1, math.ceil(total * p / 100)), 0
    out[j] = 0
    for _, v in ipairs(values) do
      seen = seen + counts[v]
      if seen >= rank then
        out[j] = v
        break
      end
    end
  end
  return out, total
end

function done(summary, latency, requests)
  local e = summary.errors
  local values, counts = histogram(latency)
  local connections = tonumber(os.getenv("WRK_CONNECTIONS") or "")
  local corrected = "yes"
  if connections and connections > 0 then
    local per_connection = math.floor(summary.requests / connections)
    if per_connection > 0 then
      counts = uncorrect(values, counts, math.floor(summary.duration / per_connection))
    end
    corrected = "no"
  end
  local p, samples = percentiles(values, counts, { 50, 99 })
  io.write(string.format(
    "RESULT requests=%d duration_us=%d rps=%.1f p50_us=%d p99_us=%d samples=%d co_corrected=%s errors=%d non2xx=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    p[1], p[2], samples, corrected, e.connect + e.read + e.write + e.timeout, e.status))
end
