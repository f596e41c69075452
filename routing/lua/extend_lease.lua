-- extend_lease: move a reservation's lease deadline to now + ARGV[4].
-- KEYS[1] pool meta hash   ARGV[1] key base   ARGV[2] now (unix ms)
-- ARGV[3] task id          ARGV[4] lease (ms)
-- ARGV[5] '1': just before the task is sent. Refused when it was sent (or being sent) already
--         (mark 'x', set here), or when a reconciler claimed the reservation (mark 'k', set by
--         claim_leases) unless ARGV[6] is that claim (the reconciler re-sending a staged task
--         that was never sent). '0': news of a sent task, which ends a claim.
-- Returns 1, or 0 when the task holds no reservation (settled already) or the send is refused.
local task = ARGV[3]
if redis.call('EXISTS', k_res(task)) == 0 then return 0 end
if ARGV[5] == '1' then
  local marks = redis.call('HMGET', k_res(task), 'k', 'x')
  if marks[2] or (marks[1] and marks[1] ~= ARGV[6]) then return 0 end
  redis.call('HSET', k_res(task), 'x', 1)
else
  redis.call('HDEL', k_res(task), 'k')
end
redis.call('ZADD', K.lease, n2s(NOW + tonumber(ARGV[4])), task)
return 1
