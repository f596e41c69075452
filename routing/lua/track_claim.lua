-- track_claim: hand out sent tasks whose next completion check is due, most overdue first,
-- within the deployment's budget of upstream GETs (a token bucket shared by every replica:
-- ARGV[5] tokens a second, holding at most one second's worth). Each claimed task's next
-- check moves to now + ARGV[4], so no other replica checks it meanwhile; a replica that dies
-- mid-check only delays it by that much. Entries whose reservation is gone (settled) leave.
-- KEYS[1] pool meta hash   ARGV[1] key base   ARGV[2] now (unix ms)
-- ARGV[3] at most this many   ARGV[4] claim (ms)   ARGV[5] GETs per second (0: no budget)
-- Returns {{task_id, due (ms)}, ...}
local limit, claim_ms, rate = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local tokens
if rate > 0 then
  local b = redis.call('HMGET', K.trackb, 't', 'at')
  tokens = tonumber(b[1]) or rate
  local at = tonumber(b[2]) or NOW
  if NOW > at then tokens = math.min(rate, tokens + (NOW - at) * rate / 1000) end
  if tokens < limit then limit = math.floor(tokens) end
end
local out = {}
if limit > 0 then
  local due = redis.call('ZRANGEBYSCORE', K.track, '-inf', NOW, 'WITHSCORES', 'LIMIT', 0, limit)
  for i = 1, #due, 2 do
    local task = due[i]
    if redis.call('EXISTS', k_res(task)) == 1 then
      redis.call('ZADD', K.track, n2s(NOW + claim_ms), task)
      out[#out + 1] = {task, tonumber(due[i + 1])}
    else
      redis.call('ZREM', K.track, task)
    end
  end
end
if rate > 0 then
  redis.call('HSET', K.trackb, 't', n2s(tokens - #out), 'at', NOW)
end
return out
