-- tick: one bounded maintenance pass, at most ARGV[3] items of each kind:
--   renewals due: fast time back to the plan's monthly figure, the declared setting restored,
--     the renewal date moved on by whole periods (ARGV[4]) past now;
--   cooling accounts past their deadline: back to active;
--   staged tasks past their deadline: out of the queue (the gateway fails them), their quota
--     charge given back.
--   pacing changes due (a window edge, a local midnight, a held gap's end): applied; ended
--     gaps never held leave `ix:gap` and `ix:gapx`.
-- KEYS[1] pool meta hash   ARGV[1] key base   ARGV[2] now (unix ms)
-- ARGV[3] at most this many per kind   ARGV[4] renewal period (ms)
-- Returns {{renewed bot_id...}, {woken bot_id...}, {expired task_id...}, {paced bot_id...}}
local limit, period = tonumber(ARGV[3]), tonumber(ARGV[4])
local renewed, woken, expired, paced = {}, {}, {}, {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', K.renew, '-inf', NOW, 'LIMIT', 0, limit)) do
  local old = acct_load(id)
  if old and old.rn then
    local a = copy(old)
    a.rn = a.rn + (math.floor((NOW - a.rn) / period) + 1) * period
    change_fast(a, a.mf, 'renewal')
    acct_save(old, a)
    renewed[#renewed + 1] = tonumber(id)
  else
    redis.call('ZREM', K.renew, id)
  end
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', K.cool, '-inf', NOW, 'LIMIT', 0, limit)) do
  local old = acct_load(id)
  if old and old.st == 'cooling' then
    local a = copy(old)
    change_state(a, 'active', nil, 'cooldown_ended')
    acct_save(old, a)
    woken[#woken + 1] = tonumber(id)
  else
    redis.call('ZREM', K.cool, id)
  end
end
for _, task in ipairs(redis.call('ZRANGEBYSCORE', K.stdl, '-inf', NOW, 'LIMIT', 0, limit)) do
  unstage(task)
  expired[#expired + 1] = task
end
for _, id in ipairs(pace_due(limit)) do paced[#paced + 1] = tonumber(id) end
-- Gaps not held that have ended leave `ix:gap`/`ix:gapx` (their fields go at the next save).
redis.call('ZREMRANGEBYSCORE', K.gap, '-inf', n2s(NOW))
redis.call('ZREMRANGEBYSCORE', K.gapx, '-inf', n2s(NOW))
return {renewed, woken, expired, paced}
