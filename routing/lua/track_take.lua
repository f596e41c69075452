-- track_take: a client's GET of a sent task asks whether it may refresh it from upstream now.
-- Yes only when its next completion check is due; the check then moves to now + ARGV[4]
-- (the caller reschedules it once it knows more), so a client poll, the tracker of any
-- replica and other polls never GET the same task at once. Client refreshes spend the same
-- deployment-wide budget of upstream GETs as the tracker (ARGV[5] a second; 0: none).
-- KEYS[1] pool meta hash   ARGV[1] key base   ARGV[2] now (unix ms)
-- ARGV[3] task id   ARGV[4] claim (ms)   ARGV[5] GETs per second (0: no budget)
-- Returns 1 (refresh now) or 0 (serve the record).
local task, claim_ms, rate = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local due = redis.call('ZSCORE', K.track, task)
if not due or tonumber(due) > NOW then return 0 end
if redis.call('EXISTS', k_res(task)) == 0 then
  redis.call('ZREM', K.track, task)
  return 0
end
if rate > 0 then
  local b = redis.call('HMGET', K.trackb, 't', 'at')
  local tokens = tonumber(b[1]) or rate
  local at = tonumber(b[2]) or NOW
  if NOW > at then tokens = math.min(rate, tokens + (NOW - at) * rate / 1000) end
  if tokens < 1 then return 0 end
  redis.call('HSET', K.trackb, 't', n2s(tokens - 1), 'at', NOW)
end
redis.call('ZADD', K.track, n2s(NOW + claim_ms), task)
return 1
