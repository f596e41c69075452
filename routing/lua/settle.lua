-- settle: end a reservation exactly once: free its slot; a completed task keeps the fast time
-- it reserved, a failed, cancelled or refused one gets it back; a refused one (the upstream
-- refused its create: it never ran) also gives back its count toward the daily cap. An account left with no fast time at
-- all (left and reserved both 0) switches to setting relax. The task leaves the completion-check
-- schedule (track_claim) with its reservation. An account removed (or removed
-- and created again) since the reservation is not touched.
-- KEYS[1] pool meta hash   ARGV[1] key base   ARGV[2] now (unix ms)
-- ARGV[3] task id          ARGV[4] outcome: completed | failed | cancelled | refused
-- ARGV[5] dispatch: at most this many staged tasks to hand the freed slot to at once (0: none)
-- ARGV[6] lease (ms) for dispatched entries that have none   ARGV[7] dispatch window
-- Returns {bot_id, mode, outcome, refunded fast seconds, {dispatched...}} (as dispatch_staged's
-- items), or nil when there is no reservation (never made, or already settled). Dispatching
-- in the same script leaves no moment where a fresh request could take the freed slot ahead
-- of a staged task that fits it (staged work goes first). A client key's
-- quota charge (tenants.lua) is given back like the fast time (failed or cancelled), and its
-- task in flight ends before the hand-over.
local task, outcome = ARGV[3], ARGV[4]
local r = redis.call('HMGET', k_res(task), 'b', 'm', 'c', 'g', 'qk', 'qd', 'qm', 'qf', 'qi',
                    'pd')
if not r[1] then return nil end
if r[5] then
  if r[9] == '1' then TN.flight_end(r[5]) end
  if outcome ~= 'completed' then
    TN.refund({qk = r[5], qd = r[6], qm = r[7]}, 1, tonumber(r[8]) or 0)
  end
end
redis.call('DEL', k_res(task))
redis.call('ZREM', K.lease, task)
redis.call('ZREM', K.track, task)
local id, mode, cost = r[1], r[2], tonumber(r[3])
local refunded = 0
local old = acct_load(id)
if old and old.g == r[4] then
  local a = copy(old)
  if mode == 'relax' then
    a.ri = math.max(0, a.ri - 1)
  else
    a.fi = math.max(0, a.fi - 1)
    local held = math.min(cost, a.fr)
    a.fr = a.fr - held
    if outcome ~= 'completed' then
      a.fl = a.fl + held
      refunded = held
    end
  end
  if outcome == 'refused' then pace_untake(a, mode, tonumber(r[10])) end
  if a.se == 'fast' and a.fl <= 0 and a.fr <= 0 then change_setting(a, 'relax', 'no_fast_time') end
  acct_save(old, a)
end
local dispatched = {}
local limit = tonumber(ARGV[5]) or 0
if limit > 0 and redis.call('EXISTS', K.stk) == 1 then
  dispatched = dispatch(limit, tonumber(ARGV[6]), tonumber(ARGV[7]))
end
return {tonumber(id), mode, outcome, refunded, dispatched}
