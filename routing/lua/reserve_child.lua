-- reserve_child: run a child task (upscale, variation, ...) on its parent's account, in the
-- parent's mode unless the account can't (setting relax or too little fast time: relax), or
-- stage it while that account is busy, paused or held by pacing (outside all its hours, or
-- at its daily cap) (child tasks, docs/routing.md), checking and counting the client
-- key's quotas in the same step.
-- KEYS[1]  pool meta hash                ARGV[1] key base    ARGV[2] now (unix ms)
-- ARGV[3]  task id                       ARGV[4] parent's bot_id
-- ARGV[5]  parent's effective mode       ARGV[6] cost in that mode, fast seconds
-- ARGV[7]  client id                     ARGV[8] lease (ms)
-- ARGV[9]  staged limit for the client   ARGV[10] staged timeout (ms)
-- ARGV[11] the key's weight in the fair queue of staged work (default 1)
-- ARGV[12] the key's quota terms, JSON (tenants.lua; "" for none)
-- Returns {'R', bot_id, mode, cost, decision, staged(0), task_id, left, alerts}
--       | {'S', reason, left, alerts}
--       | {'E', 'parent_unavailable', reason} | {'E', 'staged_limit', limit}
--       | {'E', 'quota_exceeded', limit name, retry after (s)}
--       | {'E', 'paced', reason, retry after (s)}: pacing would hold it past the staged timeout
local task, pid, pmode, cost, client = ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]), ARGV[7]
local lease_ms, limit, timeout_ms = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
local seen = known(task)
if seen then return seen end
pace_due(PACE_BATCH)
local q = TN.terms(ARGV[12])
local refused = TN.check(client, q, pmode == 'relax' and 0 or cost)
if refused then return refused end
local d = decide_child(pid, pmode, cost)
local req = {task = task, kind = 'child', client = client, q = q, lease_ms = lease_ms,
             limit = limit, timeout_ms = timeout_ms, weight = ARGV[11]}
local fields = {'k', 'child', 'm', pmode, 'c', cost, 'p', pid, 'ls', lease_ms,
                'mi', q and q.mi or ''}
return conclude(d, req, fields, pmode == 'relax' and 0 or cost)
