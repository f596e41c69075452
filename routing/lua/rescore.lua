-- rescore: recompute the strategy scores of some accounts after the pool's strategy changed
-- (membership of the indexes does not depend on the strategy; only the scores do).
-- KEYS[1] pool meta hash   ARGV[1] key base   ARGV[2] now (unix ms)
-- ARGV[3..] bot_ids
-- Returns the number of accounts rescored.
local n = 0
for i = 3, #ARGV do
  local a = acct_load(ARGV[i])
  if a then
    local free_fast, _, free_relax = eligible(a)
    if free_fast then redis.call('ZADD', tier(a).fs, n2s(fs_score(a)), a.id) end
    if free_relax then redis.call('ZADD', tier(a).rs, n2s(rs_score(a)), a.id) end
    n = n + 1
  end
end
return n
