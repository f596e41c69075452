-- reserve_root: route a root task (imagine, describe, blend) and take its slot and fast time,
-- or stage it when every candidate is busy or held by pacing (DESIGN.md section 2, rules 1-5).
-- KEYS[1]  pool meta hash                ARGV[1] key base    ARGV[2] now (unix ms)
-- ARGV[3]  task id                       ARGV[4] requested mode: relax | fast | turbo
-- ARGV[5]  cost, fast seconds (already x2 for turbo; ignored when the task runs relax)
-- ARGV[6]  client id                     ARGV[7] lease (ms)
-- ARGV[8]  staged limit for the client   ARGV[9] staged timeout (ms)
-- ARGV[10] bot_ids to skip, comma-separated ("" for none)
-- ARGV[11] the client key's allowed account tags, a JSON list ("" for any account)
-- Returns {'R', bot_id, mode, cost, decision, staged(0), task_id} | {'S', reason}
--       | {'E', 'no_relax_capable_account'} | {'E', 'staged_limit', limit}
-- A task id already reserved or staged returns what it holds (a retried call is harmless).
local task, mode, cost, client = ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6]
local lease_ms, limit, timeout_ms = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local seen = known(task)
if seen then return seen end
pace_due(PACE_BATCH)
local ex, nex = exclusion(ARGV[10])
local d = decide_root(mode, cost, ex, nex, ARGV[11])
if d[1] == 'R' then return reserve(task, d[2], d[3], d[4], d[5], lease_ms, 0, 'root') end
if d[1] == 'S' then
  return stage(task, d[2], client, limit, NOW + timeout_ms,
               {'k', 'root', 'm', mode, 'c', cost, 'x', ARGV[10], 'ls', lease_ms,
                't', ARGV[11] or ''})
end
return d
