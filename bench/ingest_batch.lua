-- wrk: NDJSON batches of 1000 experiments per POST, unique ids.
local run = os.getenv("RUN") or "0"
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
local n = 0
local lines = {}
function request()
  for i = 1, 1000 do
    n = n + 1
    lines[i] = string.format(
      '{"experiment_id":"b%s-t%d-%d","status":"success","duration_seconds":3,' ..
      '"script_compilation_time_ms":%d,"ai_strategy":"batch"}', run, tid, n, 50 + n % 90)
  end
  return wrk.format("POST", "/api/v1/experiments",
                    {["Content-Type"] = "application/x-ndjson"}, table.concat(lines, "\n"))
end
