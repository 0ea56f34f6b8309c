-- wrk: one experiment per POST, unique ids (RUN from the environment keeps rounds apart).
local run = os.getenv("RUN") or "0"
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
local n = 0
function request()
  n = n + 1
  local body = string.format(
    '{"experiment_id":"r%s-t%d-%d","status":"%s","duration_seconds":12.5,' ..
    '"script_compilation_time_ms":%d,"checkpoint_loading_time_ms":420.5,"ai_strategy":"s%d"}',
    run, tid, n, (n % 20 == 0) and "failure" or "success", 60 + n % 70, n % 4)
  return wrk.format("POST", "/api/v1/experiments", {["Content-Type"] = "application/json"}, body)
end
