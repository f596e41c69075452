-- outbox_claim: take up to ARGV[2] due webhook deliveries, pushing each one's due time on by
-- ARGV[3] ms so no other replica takes it while this one delivers.
-- KEYS[1] the outbox sorted set (member: task id, score: due time in ms)
-- ARGV[1] now (ms)   ARGV[2] limit   ARGV[3] claim (ms)
-- Returns the claimed task ids.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local until_ms = tonumber(ARGV[1]) + tonumber(ARGV[3])
for _, member in ipairs(due) do
  redis.call('ZADD', KEYS[1], until_ms, member)
end
return due
