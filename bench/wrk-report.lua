-- wrk's report for the benchmark (bench/wrk.ts): at the end of a run, one JSON line on stdout
-- with the counts, every latency wrk recorded as [microseconds, count] pairs (exact, so runs
-- can be merged and percentiles read to the microsecond), and wrk's own CPU time so far
-- (utime + stime of the whole process, in clock ticks, from /proc/self/stat).

local function cpu_ticks()
  local f = io.open("/proc/self/stat", "r")
  if not f then return -1 end
  local text = f:read("*a")
  f:close()
  -- Fields after the command name, which is in parentheses: the first is field 3.
  local rest = text:match("%) (.*)$")
  local fields = {}
  for w in rest:gmatch("%S+") do fields[#fields + 1] = w end
  return tonumber(fields[12]) + tonumber(fields[13])
end

done = function(summary, latency, requests)
  local pairs_out = {}
  for i = 1, #latency do
    local value, count = latency(i)
    pairs_out[#pairs_out + 1] = string.format("[%d,%d]", value, count)
  end
  local e = summary.errors
  io.write(string.format(
    '{"wrkReport":1,"durationUs":%d,"requests":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"cpuTicks":%d,"latencyUs":[%s]}\n',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    cpu_ticks(), table.concat(pairs_out, ",")))
end
