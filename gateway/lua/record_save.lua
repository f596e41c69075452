-- record_save: write a task record unless it already reached a terminal status.
-- KEYS[1] the task record hash (Keys.task)
-- KEYS[2] the upstream-id map key (Keys.upstream_task), ignored when ARGV[3] is ''
-- ARGV[1] ttl in seconds        ARGV[2] '1' to write even over a terminal record, else '0'
-- ARGV[3] the upstream task id or ''   ARGV[4] mjgate's task id
-- ARGV[5..] field, value, field, value, ...
-- Returns 1 when written, 0 when the stored record was terminal (first terminal news wins).
local status = redis.call('HGET', KEYS[1], 'status')
if ARGV[2] ~= '1' and (status == 'completed' or status == 'failed') then
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
redis.call('EXPIRE', KEYS[1], ARGV[1])
if ARGV[3] ~= '' then
  redis.call('SET', KEYS[2], ARGV[4], 'EX', ARGV[1])
end
return 1
