-- reserve_child: run a child task (upscale, variation, ...) on its parent's account, in the
-- parent's mode unless the account can't (setting relax or too little fast time: relax), or
-- stage it while that account is busy, paused or held by pacing (outside all its hours, or
-- at its daily cap) (DESIGN.md section 2, child tasks).
-- KEYS[1]  pool meta hash                ARGV[1] key base    ARGV[2] now (unix ms)
-- ARGV[3]  task id                       ARGV[4] parent's bot_id
-- ARGV[5]  parent's effective mode       ARGV[6] cost in that mode, fast seconds
-- ARGV[7]  client id                     ARGV[8] lease (ms)
-- ARGV[9]  staged limit for the client   ARGV[10] staged timeout (ms)
-- Returns {'R', bot_id, mode, cost, decision, staged(0), task_id} | {'S', reason}
--       | {'E', 'parent_unavailable', reason} | {'E', 'staged_limit', limit}
local task, pid, pmode, cost, client = ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]), ARGV[7]
local lease_ms, limit, timeout_ms = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
local seen = known(task)
if seen then return seen end
pace_due(PACE_BATCH)
local d = decide_child(pid, pmode, cost)
if d[1] == 'R' then return reserve(task, d[2], d[3], d[4], d[5], lease_ms, 0, 'child') end
if d[1] == 'S' then
  return stage(task, d[2], client, limit, NOW + timeout_ms,
               {'k', 'child', 'm', pmode, 'c', cost, 'p', pid, 'ls', lease_ms})
end
return d
