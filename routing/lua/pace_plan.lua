-- pace_plan: store new pacing plans (computed by routing/pacing.py from each account's time
-- zone and windows) on accounts whose look-ahead was used up (`ix:pref`). Changes due by
-- now are applied first, so today's counts reset at the midnight that passed, not here.
-- KEYS[1] pool meta hash   ARGV[1] key base   ARGV[2] now (unix ms)
-- ARGV[3..] groups of 8: bot_id, the profile's tz|ah|ao the plan was computed for, and the
--   plan: ph, pu, pn, pw, de, dn ("" for none)
-- Returns the bot_ids whose plan was stored (an account whose profile changed meanwhile
-- got a fresh plan with that change and is skipped).
local done = {}
for i = 3, #ARGV, 8 do
  local old = acct_load(ARGV[i])
  if old and old.tz and (old.tz .. '|' .. (old.ah or '') .. '|' .. (old.ao or '')) == ARGV[i + 1] then
    local a = copy(old)
    pace_advance(a)
    local plan = {'ph', 'pu', 'pn', 'pw', 'de', 'dn'}
    for j, f in ipairs(plan) do
      local v = ARGV[i + 1 + j]
      if v == '' then a[f] = nil elseif NUMERIC[f] then a[f] = tonumber(v) else a[f] = v end
    end
    a.pz = nil
    acct_save(old, a)
    done[#done + 1] = tonumber(ARGV[i])
  end
end
return done
