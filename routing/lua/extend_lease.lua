-- extend_lease: move a reservation's lease deadline to now + ARGV[4].
-- KEYS[1] pool meta hash   ARGV[1] key base   ARGV[2] now (unix ms)
-- ARGV[3] task id          ARGV[4] lease (ms)
-- Returns 1, or 0 when the task holds no reservation (settled already).
local task = ARGV[3]
if redis.call('EXISTS', k_res(task)) == 0 then return 0 end
redis.call('ZADD', K.lease, n2s(NOW + tonumber(ARGV[4])), task)
return 1
