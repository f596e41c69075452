-- reserve_root: route a root task (imagine, describe, blend) and take its slot and fast time,
-- or stage it when every candidate is busy or held by pacing (the routing rules, docs/routing.md),
-- checking and counting the client key's quotas in the same step.
-- KEYS[1]  pool meta hash                ARGV[1] key base    ARGV[2] now (unix ms)
-- ARGV[3]  task id                       ARGV[4] requested mode: relax | fast | turbo
-- ARGV[5]  cost, fast seconds (already x2 for turbo; ignored when the task runs relax)
-- ARGV[6]  client id                     ARGV[7] lease (ms)
-- ARGV[8]  staged limit for the client   ARGV[9] staged timeout (ms)
-- ARGV[10] bot_ids to skip, comma-separated ("" for none)
-- ARGV[11] the client key's allowed account tags, a JSON list ("" for any account)
-- ARGV[12] the key's weight in the fair queue of staged work (default 1)
-- ARGV[13] the account the task is pinned to ("" for none)
-- ARGV[14] the key's quota terms, JSON (tenants.lua; "" for none)
-- Returns {'R', bot_id, mode, cost, decision, staged(0), task_id, left, alerts}
--       | {'S', reason, left, alerts} | {'E', 'no_relax_capable_account'}
--       | {'E', 'staged_limit', limit} | {'E', 'quota_exceeded', limit name, retry after (s)}
--       | {'E', 'pinned_unavailable', reason}
--       | {'E', 'paced', reason, retry after (s)}: pacing would hold it past the staged timeout
-- (`left`: {limit name, what is left, ...}; `alerts`: {limit name, percent, ...} crossed now.)
-- A task id already reserved or staged returns what it holds (a retried call is harmless).
local task, mode, cost, client = ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6]
local lease_ms, limit, timeout_ms = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local seen = known(task)
if seen then return seen end
pace_due(PACE_BATCH)
local q = TN.terms(ARGV[14])
local refused = TN.check(client, q, mode == 'relax' and 0 or cost)
if refused then return refused end
local pin = ARGV[13] or ''
local d
if pin ~= '' then
  d = decide_pinned(pin, mode, cost, ARGV[11])
else
  local ex, nex = exclusion(ARGV[10])
  d = decide_root(mode, cost, ex, nex, ARGV[11])
end
local req = {task = task, kind = 'root', client = client, q = q, lease_ms = lease_ms,
             limit = limit, timeout_ms = timeout_ms, weight = ARGV[12]}
local fields = {'k', pin ~= '' and 'pin' or 'root', 'm', mode, 'c', cost, 'x', ARGV[10],
                'ls', lease_ms, 't', ARGV[11] or '', 'p', pin, 'mi', q and q.mi or ''}
return conclude(d, req, fields, mode == 'relax' and 0 or cost)
