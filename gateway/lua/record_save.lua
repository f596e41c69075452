-- record_save: write a task record unless it already reached a terminal status.
-- KEYS[1] the task record hash (Keys.task): fields `s` (status) and `d` (the encoded record)
-- KEYS[2] the upstream-id map key (Keys.upstream_task)
-- ARGV[1] ttl in seconds
-- ARGV[2] when to write: '1' always; '0' unless the stored record is terminal; '=<status>'
--         only if the stored status is that one (a compare-and-set)
-- ARGV[3] the upstream task id or ''   ARGV[4] mjgate's task id
-- ARGV[5] the status            ARGV[6] the encoded record
-- The upstream-id map exists while the task can still get webhooks: it is set while the task
-- runs and deleted once the record is terminal (later webhooks change nothing anyway).
-- Returns 1 when written, 0 when not (first terminal news wins; a failed compare-and-set).
local status = redis.call('HGET', KEYS[1], 's')
local when = ARGV[2]
if when == '0' and (status == 'completed' or status == 'failed') then return 0 end
if string.sub(when, 1, 1) == '=' and status ~= string.sub(when, 2) then return 0 end
redis.call('HSET', KEYS[1], 's', ARGV[5], 'd', ARGV[6])
redis.call('EXPIRE', KEYS[1], ARGV[1])
if ARGV[3] ~= '' then
  if ARGV[5] == 'completed' or ARGV[5] == 'failed' then
    redis.call('DEL', KEYS[2])
  else
    redis.call('SET', KEYS[2], ARGV[4], 'EX', ARGV[1])
  end
end
return 1
