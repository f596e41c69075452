-- rescore: recompute the strategy scores of some accounts after the pool's strategy changed
-- (membership of the indexes does not depend on the strategy; only the scores do).
-- KEYS[1] pool meta hash   ARGV[1] key base   ARGV[2] now (unix ms)
-- ARGV[3..] bot_ids
-- Returns the number of accounts rescored.
local n = 0
for i = 3, #ARGV do
  local a = acct_load(ARGV[i])
  if a then
    local T, m = tier(a), standing(a)
    if m[T.fs] then redis.call('ZADD', T.fs, n2s(m[T.fs]), a.id) end
    if m[T.rs] then redis.call('ZADD', T.rs, n2s(m[T.rs]), a.id) end
    n = n + 1
  end
end
return n
