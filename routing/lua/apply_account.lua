-- apply_account: create or update an account's definition. Live figures (in flight, fast
-- time reserved) are kept. A declared fast time, setting, state or renewal date is applied
-- only when it differs from the last declared one, so re-applying an unchanged definition
-- restores nothing that was consumed or changed by mjgate since.
-- KEYS[1] pool meta hash   ARGV[1] key base   ARGV[2] now (unix ms)
-- ARGV[3] bot_id   ARGV[4] name   ARGV[5] plan   ARGV[6] declared setting
-- ARGV[7] declared fast seconds left   ARGV[8] declared renewal (unix ms, "" for none)
-- ARGV[9] fast slots   ARGV[10] relax slots   ARGV[11] weight   ARGV[12] tags (JSON)
-- ARGV[13] declared state   ARGV[14] the plan's monthly fast seconds   ARGV[15] dry run (1/0)
-- ARGV[16] pacing: a JSON object of the profile's and its plan's account fields (tz ah ao kf
--   kr cc gm gj ti; ph pu pn pw de dn: pacing.lua), "" for an account without pacing. A
--   changed profile keeps today's counts and a gap in progress.
-- Returns {'created'} | {'unchanged'} | {'updated', changed field names...}
local id, dry = ARGV[3], ARGV[15] == '1'
local d = {n = ARGV[4], p = ARGV[5], ds = ARGV[6], dfl = tonumber(ARGV[7]),
           drn = tonumber(ARGV[8]), fs = tonumber(ARGV[9]), rs = tonumber(ARGV[10]),
           w = tonumber(ARGV[11]), tg = ARGV[12], dst = ARGV[13], mf = tonumber(ARGV[14])}
local PACE_DEF = {{'tz', 'timezone'}, {'ah', 'active_hours'}, {'ao', 'actions_only_hours'},
                  {'kf', 'daily_caps'}, {'kr', 'daily_caps'}, {'cc', 'caps_count_children'},
                  {'gm', 'min_gap_seconds'}, {'gj', 'gap_jitter_seconds'}, {'ti', 'tier'}}
local PACE_LIVE = {'ph', 'pu', 'pn', 'pw', 'de', 'dn', 'nf', 'nr', 'gp', 'gr', 'pz'}
local pacing = {}
if ARGV[16] and ARGV[16] ~= '' then
  for f, v in pairs(cjson.decode(ARGV[16])) do
    if v ~= '' then
      if NUMERIC[f] then pacing[f] = tonumber(v) else pacing[f] = v end
    end
  end
end
-- Put the profile and its plan on `a` (counts and gaps stay while it has one).
local function set_pacing(a)
  pace_advance(a)
  for _, f in ipairs(PACE_DEF) do a[f[1]] = pacing[f[1]] end
  for _, f in ipairs({'ph', 'pu', 'pn', 'pw', 'de', 'dn'}) do a[f] = pacing[f] end
  a.pz = nil
  if not pacing.tz then
    for _, f in ipairs(PACE_LIVE) do a[f] = nil end
  end
end
local old = acct_load(id)
if not old then
  if dry then return {'created'} end
  local a = copy(d)
  a.id, a.g = id, tostring(redis.call('HINCRBY', K.meta, 'gen', 1))
  a.se, a.st, a.rn, a.fl, a.fr, a.fi, a.ri = d.ds, d.dst, d.drn, d.dfl, 0, 0, 0
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
  if old[f[1]] ~= d[f[1]] then changed[#changed + 1] = f[2] end
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
    change_setting(a, 'relax', 'pool_file')
  else
    change_setting(a, d.ds, 'pool_file')
  end
end
if old.dfl ~= d.dfl then
  a.dfl = d.dfl
  change_fast(a, d.dfl, 'pool_file')
end
if old.drn ~= d.drn then a.drn, a.rn = d.drn, d.drn end
if old.dst ~= d.dst then
  a.dst = d.dst
  change_state(a, d.dst, nil, 'pool_file')
end
set_pacing(a)
acct_save(old, a)
if #changed == 1 then return {'unchanged'} end
return changed
