-- record_save: write a task record unless it already reached a terminal status.
-- KEYS[1] the task record hash (Keys.task): fields `s` (status) and `d` (the encoded record)
-- ARGV[1] ttl in seconds
-- ARGV[2] when to write: '1' always; '0' unless the stored record is terminal; '=<status>'
--         only if the stored status is that one (a compare-and-set)
-- ARGV[3] the status            ARGV[4] the encoded record
-- Returns 1 when written, 0 when not (first terminal news wins; a failed compare-and-set).
-- The upstream-id map lives in another cluster slot: gateway/records.py writes it with its
-- own command in the same round trip.
local status = redis.call('HGET', KEYS[1], 's')
local when = ARGV[2]
if when == '0' and (status == 'completed' or status == 'failed') then return 0 end
if string.sub(when, 1, 1) == '=' and status ~= string.sub(when, 2) then return 0 end
redis.call('HSET', KEYS[1], 's', ARGV[3], 'd', ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
