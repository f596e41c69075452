-- key_update: replace a managed client key's name and policy if nobody changed them since they
-- were read (compare and set on one key), and never bring back a revoked key.
-- KEYS[1] the key's record (Keys.client_key)
-- ARGV[1] the policy JSON as read ("" when none)   ARGV[2] the name as read ("" when none)
-- ARGV[3] the new policy JSON                       ARGV[4] the new name
-- Returns 1 when written, 0 when the key is gone, -1 when it changed meanwhile (read again).
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local now = redis.call('HMGET', KEYS[1], 'p', 'n')
if (now[1] or '') ~= ARGV[1] or (now[2] or '') ~= ARGV[2] then return -1 end
redis.call('HSET', KEYS[1], 'p', ARGV[3], 'n', ARGV[4])
return 1
