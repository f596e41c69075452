-- claim_leases: hand out reservations whose lease ran out, oldest first, pushing each one's
-- deadline to now + ARGV[4] so that no other replica claims it meanwhile, and marking it claimed
-- ('k' = this claim, ARGV[2]: a sender that finds another claim never sends the task; see
-- extend_lease).
-- KEYS[1] pool meta hash   ARGV[1] key base   ARGV[2] now (unix ms)
-- ARGV[3] at most this many   ARGV[4] claim (ms)
-- Returns {{task_id, bot_id, mode, cost, decision, staged, sent, claim}, ...}: `sent` 1 when a
-- sender marked it before the upstream call ('x'), so a staged task with 0 was never sent.
local out = {}
local due = redis.call('ZRANGEBYSCORE', K.lease, '-inf', NOW, 'LIMIT', 0, tonumber(ARGV[3]))
for _, task in ipairs(due) do
  local r = redis.call('HMGET', k_res(task), 'b', 'm', 'c', 'd', 's', 'x')
  if r[1] then
    redis.call('ZADD', K.lease, n2s(NOW + tonumber(ARGV[4])), task)
    redis.call('HSET', k_res(task), 'k', ARGV[2])
    out[#out + 1] = {task, tonumber(r[1]), r[2], tonumber(r[3]), r[4], tonumber(r[5]),
                     r[6] and 1 or 0, ARGV[2]}
  else
    redis.call('ZREM', K.lease, task)
  end
end
return out
