-- restage_key: a client key's policy changed; its staged tasks take the new share of staged
-- work, account tags and tasks-in-flight limit (what dispatch_staged reads from each entry), so
-- a key narrowed to fewer accounts never reaches the others through work staged before.
-- KEYS[1] pool meta hash   ARGV[1] key base   ARGV[2] now (unix ms)
-- ARGV[3] client id   ARGV[4] weight   ARGV[5] account tags, JSON ("" for any account)
-- ARGV[6] tasks in flight at most ("" for no limit)
-- Returns the number of staged tasks changed (O(the key's staged tasks), at most its limit).
local tasks = redis.call('ZRANGE', TN.kq(ARGV[3]), 0, -1)
for _, task in ipairs(tasks) do
  redis.call('HSET', k_stg(task), 'w', ARGV[4], 't', ARGV[5], 'mi', ARGV[6])
end
return #tasks
