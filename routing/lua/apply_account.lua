-- apply_account: create or update an account's definition. Live figures (in flight, fast
-- time reserved) are kept. A declared fast time, setting, state or renewal date is applied
-- only when it differs from the last declared one, so re-applying an unchanged definition
-- restores nothing that was consumed or changed by mjgate since.
-- A renewal is granted once: the pool's `renewed` hash keeps, by bot_id, the last renewal
-- instant granted (read off the account: a renewal moved `rn` on past the declared `drn`),
-- and outlives a file without a renewal date and the account's removal. A declared date no
-- later than it names a renewal already granted: the account's next renewal is then a period
-- after that one, not the declared date (which would renew again at once). A declared date
-- equal to the live next renewal (what `pool export` writes) is no change.
-- KEYS[1] pool meta hash   ARGV[1] key base   ARGV[2] now (unix ms)
-- ARGV[3] bot_id   ARGV[4] name   ARGV[5] plan   ARGV[6] declared setting
-- ARGV[7] declared fast seconds left   ARGV[8] declared renewal (unix ms, "" for none)
-- ARGV[9] fast slots   ARGV[10] relax slots   ARGV[11] weight   ARGV[12] tags (JSON)
-- ARGV[13] declared state   ARGV[14] the plan's monthly fast seconds   ARGV[15] dry run (1/0)
-- ARGV[16] pacing: a JSON object of the profile's and its plan's account fields (tz ah ao kf
--   kr cc gm gj ti; ph pu pn pw de dn: pacing.lua), "" for an account without pacing. A
--   changed profile keeps today's counts, and a gap in progress up to its new longest gap.
-- ARGV[17] the renewal period (ms; routing/upkeep.py)
-- ARGV[18] why, for the history of a setting, fast time or state it changes ("pool_file")
-- Returns {'created'} | {'unchanged'} | {'updated', changed field names...}
local id, dry = ARGV[3], ARGV[15] == '1'
local d = {n = ARGV[4], p = ARGV[5], ds = ARGV[6], dfl = tonumber(ARGV[7]),
           drn = tonumber(ARGV[8]), fs = tonumber(ARGV[9]), rs = tonumber(ARGV[10]),
           w = tonumber(ARGV[11]), tg = ARGV[12], dst = ARGV[13], mf = tonumber(ARGV[14])}
local period, k_renewed = tonumber(ARGV[17]), BASE .. 'renewed'
local why = (ARGV[18] or '') ~= '' and ARGV[18] or 'pool_file'
local PACE_DEF = {{'tz', 'timezone'}, {'ah', 'active_hours'}, {'ao', 'actions_only_hours'},
                  {'kf', 'daily_caps'}, {'kr', 'daily_caps'}, {'cc', 'caps_count_children'},
                  {'gm', 'min_gap_seconds'}, {'gj', 'gap_jitter_seconds'}, {'ti', 'tier'}}
local PACE_LIVE = {'ph', 'pu', 'pn', 'pw', 'de', 'dn', 'nf', 'nr', 'gp', 'gr', 'gu', 'pz'}
local pacing = {}
if ARGV[16] and ARGV[16] ~= '' then
  for f, v in pairs(cjson.decode(ARGV[16])) do
    if v ~= '' then
      if NUMERIC[f] then pacing[f] = tonumber(v) else pacing[f] = v end
    end
  end
end
-- Put the profile and its plan on `a` (counts and gaps stay while it has one). A running
-- gap ends no later than the new profile's longest gap from now: a lowered gap applies at
-- once, a raised one from the next submission (an unchanged profile never shortens one).
local function set_pacing(a)
  pace_advance(a)
  for _, f in ipairs(PACE_DEF) do a[f[1]] = pacing[f[1]] end
  for _, f in ipairs({'ph', 'pu', 'pn', 'pw', 'de', 'dn'}) do a[f] = pacing[f] end
  a.pz = nil
  if not pacing.tz then
    for _, f in ipairs(PACE_LIVE) do a[f] = nil end
    return
  end
  local last = NOW + (a.gm or 0) + (a.gj or 0)
  if a.gu and a.gu > last then a.gu = last > NOW and last or nil end
  if a.gp and a.gr and a.gr > last then
    if last > NOW then a.gr = last else a.gp, a.gr = nil, nil end
  end
end
-- The last renewal instant granted to this bot_id (nil: none known), kept in `renewed`.
local function granted(old)
  local kept = tonumber(redis.call('HGET', k_renewed, id))
  local g = kept
  if old and old.rn and old.drn and old.rn > old.drn then -- a renewal moved rn on
    local last = old.rn - period
    if not g or last > g then g = last end
  end
  if g and g ~= kept and not dry then redis.call('HSET', k_renewed, id, n2s(g)) end
  return g
end
-- The next renewal for a declared date: a period after the last one granted when that one
-- is as late or later.
local function next_renewal(declared, g)
  if declared and g and declared <= g then return g + period end
  return declared
end
local old = acct_load(id)
if not old then
  if dry then return {'created'} end
  local a = copy(d)
  a.id, a.g = id, tostring(redis.call('HINCRBY', K.meta, 'gen', 1))
  a.se, a.st, a.fl, a.fr, a.fi, a.ri = d.ds, d.dst, d.dfl, 0, 0, 0
  a.rn = next_renewal(d.drn, granted(nil))
  if d.dfl <= 0 then a.se = 'relax' end
  set_pacing(a)
  acct_save(nil, a)
  return {'created'}
end
local NAMES = {{'n', 'name'}, {'p', 'plan'}, {'ds', 'setting'}, {'dfl', 'fast_seconds_left'},
               {'drn', 'renews_at'}, {'fs', 'fast_slots'}, {'rs', 'relax_slots'},
               {'w', 'weight'}, {'tg', 'tags'}, {'dst', 'state'}}
local changed = {'updated'}
for _, f in ipairs(NAMES) do
  local same = old[f[1]] == d[f[1]] or (f[1] == 'drn' and d.drn and d.drn == old.rn)
  if not same then changed[#changed + 1] = f[2] end
end
for _, f in ipairs(PACE_DEF) do
  if old[f[1]] ~= pacing[f[1]] and changed[#changed] ~= f[2] then changed[#changed + 1] = f[2] end
end
if #changed == 1 and old.mf == d.mf then return {'unchanged'} end
if dry then return changed end
local a = copy(old)
a.n, a.p, a.fs, a.rs, a.w, a.tg, a.mf = d.n, d.p, d.fs, d.rs, d.w, d.tg, d.mf
if old.ds ~= d.ds then
  a.ds = d.ds
  if d.ds == 'fast' and a.fl + a.fr <= 0 then
    change_setting(a, 'relax', why)
  else
    change_setting(a, d.ds, why)
  end
end
if old.dfl ~= d.dfl then
  a.dfl = d.dfl
  change_fast(a, d.dfl, why)
end
local g = granted(old)
if old.drn ~= d.drn then a.drn, a.rn = d.drn, next_renewal(d.drn, g) end
if old.dst ~= d.dst then
  a.dst = d.dst
  change_state(a, d.dst, nil, why)
end
set_pacing(a)
acct_save(old, a)
if #changed == 1 then return {'unchanged'} end
return changed
