-- idempotency_claim: claim a client's idempotency key for a task, or say who holds it: SET NX,
-- or the value already there, in one atomic step on one key.
-- KEYS[1] the idempotency key (Keys.idempotency)
-- ARGV[1] "<task id> <request fingerprint>"   ARGV[2] ttl in seconds
-- Returns false when claimed now, else the value already there.
local v = redis.call('GET', KEYS[1])
if v then return v end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return false
