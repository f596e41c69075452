-- claim_leases: hand out reservations whose lease ran out, oldest first, pushing each one's
-- deadline to now + ARGV[4] so that no other replica claims it meanwhile, and marking it claimed
-- ('k': a sender that finds it so never sends the task; see extend_lease).
-- KEYS[1] pool meta hash   ARGV[1] key base   ARGV[2] now (unix ms)
-- ARGV[3] at most this many   ARGV[4] claim (ms)
-- Returns {{task_id, bot_id, mode}, ...}
local out = {}
local due = redis.call('ZRANGEBYSCORE', K.lease, '-inf', NOW, 'LIMIT', 0, tonumber(ARGV[3]))
for _, task in ipairs(due) do
  local r = redis.call('HMGET', k_res(task), 'b', 'm')
  if r[1] then
    redis.call('ZADD', K.lease, n2s(NOW + tonumber(ARGV[4])), task)
    redis.call('HSET', k_res(task), 'k', 1)
    out[#out + 1] = {task, tonumber(r[1]), r[2]}
  else
    redis.call('ZREM', K.lease, task)
  end
end
return out
