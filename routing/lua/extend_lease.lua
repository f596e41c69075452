-- extend_lease: move a reservation's lease deadline to now + ARGV[4].
-- KEYS[1] pool meta hash   ARGV[1] key base   ARGV[2] now (unix ms)
-- ARGV[3] task id          ARGV[4] lease (ms)
-- ARGV[5] '1': before the task is sent, refused when a reconciler claimed the reservation
--         (claim_leases marks it 'k': it may be ending it); '0': news of a sent task, which
--         ends a claim
-- Returns 1, or 0 when the task holds no reservation (settled already) or, with ARGV[5] = '1',
-- a reconciler claimed it.
local task = ARGV[3]
if redis.call('EXISTS', k_res(task)) == 0 then return 0 end
if ARGV[5] == '1' then
  if redis.call('HEXISTS', k_res(task), 'k') == 1 then return 0 end
else
  redis.call('HDEL', k_res(task), 'k')
end
redis.call('ZADD', K.lease, n2s(NOW + tonumber(ARGV[4])), task)
return 1
