-- run_relax: the upstream ran a task relax (its `meta.process_mode`) that was reserved fast or
-- turbo: the account is out of fast time, and GoAPI has switched its setting to relax. The
-- reservation moves to a relax slot and gives its fast time back (to the key's quota too);
-- the account's fast time left becomes 0 and its setting relax, as GoAPI's did, so it takes
-- no more fast work until its fast time is set again or renewed.
-- KEYS[1] pool meta hash   ARGV[1] key base   ARGV[2] now (unix ms)   ARGV[3] task id
-- Returns 1 when moved, 0 when the task holds no reservation or holds a relax one already.
local task = ARGV[3]
local r = redis.call('HMGET', k_res(task), 'b', 'm', 'c', 'g', 'qk', 'qd', 'qm', 'qf')
if not r[1] or r[2] == 'relax' then return 0 end
if r[5] and (tonumber(r[8]) or 0) > 0 then
  TN.refund({qk = r[5], qd = r[6], qm = r[7]}, 0, tonumber(r[8]))
  redis.call('HSET', k_res(task), 'qf', 0)
end
redis.call('HSET', k_res(task), 'm', 'relax', 'c', 0)
local old = acct_load(r[1])
if old and old.g == r[4] then
  local a = copy(old)
  a.fi = math.max(0, a.fi - 1)
  a.ri = a.ri + 1
  a.fr = a.fr - math.min(tonumber(r[3]) or 0, a.fr)
  a.fl = 0
  if a.se == 'fast' then change_setting(a, 'relax', 'upstream_ran_relax') end
  acct_save(old, a)
end
return 1
