-- pacing.lua: the pacing rules an account's fields give (after accounts.lua). What they
-- read, present only on accounts with a profile (routing/pacing.py computes the plan):
--   tz time zone, ah/ao active/actions-only windows (display and export), kf/kr daily caps
--   fast(+turbo)/relax, cc '0' when child tasks don't count, gm/gj gap and jitter (ms),
--   ti 'backup' for the backup tier; the plan: ph phase now (a active | o actions-only |
--   x off), pu its end (ms), pn the next phase, pw its end, de/dn the next two local
--   midnights (ms); live: nf/nr jobs today, gu the end (ms) of the gap the last submission
--   started, gp '1' once routing has met the account inside that gap and holds it until gr
--   (ms; then gu is moved there), pz '1' when the plan's look-ahead is used up and the tick
--   should compute a new one.
-- A gap is held lazily: the submission that starts it only writes `gu`, and the account
-- stays in the selection indexes; routing checks every candidate it picks and holds one in
-- its gap then (indexes.lua's gap_hold: out of the indexes, its end in `ix:pace`), as it
-- does every gap still running before a decision stages. A gap nothing meets costs no
-- write at its end.
-- `class`: 'f' fast/turbo work, 'r' relax work. All of it reads fields only: index
-- membership stays a pure function of the account's fields; time moves the fields
-- (pace_advance) at the instants the account's `ix:pace` score names; indexes.lua's
-- pace_apply saves what moved.
local function capped(a, class)
  if class == 'f' then return a.kf ~= nil and (a.nf or 0) >= a.kf end
  return a.kr ~= nil and (a.nr or 0) >= a.kr
end

local function in_hours(a) return a.ph == nil or a.ph == 'a' end

-- Pacing's rules on the account in one look: inside its hours; may it take a new root task
-- of fast (+turbo) work, of relax work; is it at both caps.
local function pace_view(a)
  local hours, cf, cr = in_hours(a), capped(a, 'f'), capped(a, 'r')
  local open = hours and not a.gp
  return hours, open and not cf, open and not cr, cf and cr
end

-- May pacing let the account take a new root task of `class` now?
local function pace_root_ok(a, class)
  local _, okf, okr = pace_view(a)
  if class == 'f' then return okf end
  return okr
end

-- Inside a gap routing has not met yet (`gu` running, not held)?
local function gap_unheld(a) return a.gu ~= nil and a.gp == nil and a.gu > NOW end

-- Could the account run work of `class` ('f' | 'r'), pacing aside? Fast: setting fast and
-- fast time (left or reserved); else its fast work runs relax. Relax: relax_capable.
local function can_run(a, class)
  if class == 'f' then return a.se == 'fast' and a.fl + a.fr > 0 end
  return relax_capable(a)
end

-- Do caps hold every root task the account could take: both reached, or one reached and the
-- other class one it can't run (a Basic plan at its fast cap)?
local function caps_hold(a)
  local cf, cr = capped(a, 'f'), capped(a, 'r')
  if cf and cr then return true end
  if cf then return not can_run(a, 'r') end
  if cr then return not can_run(a, 'f') end
  return false
end

-- Does a gap hold the account back: it is active, inside its hours and caps don't hold it
-- (otherwise something else holds it, and its gap's end changes nothing)?
local function gap_matters(a)
  return a.st == 'active' and in_hours(a) and not caps_hold(a)
end

-- The rule that holds a root task of `class` on this account (nil: none).
local function pace_reason(a, class)
  if a.ph == 'o' then return 'paced:actions_only' end
  if a.ph == 'x' then return 'paced:outside_hours' end
  if capped(a, class) then return 'paced:daily_cap' end
  if a.gp or gap_unheld(a) then return 'paced:gap' end
  return nil
end

-- The rule that holds a child task of `class` on its parent's account (nil: none).
local function pace_child_reason(a, class)
  if a.ph == 'x' then return 'paced:outside_hours' end
  if a.cc ~= '0' and capped(a, class) then return 'paced:daily_cap' end
  return nil
end

-- The account's next time-driven change (ms): a phase edge, a local midnight, a held gap's
-- end (one not held changes nothing when it ends: its field is left for the next save).
local function pace_next(a)
  local t = a.pu
  if a.de and (t == nil or a.de < t) then t = a.de end
  if a.gp and a.gr and (t == nil or a.gr < t) then t = a.gr end
  return t
end

-- Apply every time-driven change due by now to `a` (a copy): the plan's next phase, the
-- caps' reset at local midnight, a gap's end. A used-up plan holds the account off (never
-- outside its hours) and asks the tick for a new one (`pz`).
local function pace_advance(a)
  while a.pu and a.pu <= NOW do
    if a.pn then
      a.ph, a.pu, a.pn, a.pw = a.pn, a.pw, nil, nil
    else
      a.ph, a.pu = 'x', nil
    end
    a.pz = '1'
  end
  while a.de and a.de <= NOW do
    a.nf, a.nr, a.de, a.dn, a.pz = nil, nil, a.dn, nil, '1'
  end
  if a.gp and (a.gr == nil or a.gr <= NOW) then a.gp, a.gr = nil, nil end
  if a.gu and a.gu <= NOW then a.gu = nil end
end

-- Count a submission on its account (caps) and start its gap (`gu`: routing holds the
-- account when it meets it inside; a child task on a held account holds it longer).
-- `jitter_key` (the task id) makes the gap's random part, modulo jitter + 1 ms: its last 8
-- hex digits (mjgate's ids are random UUIDs: 32 random bits, read for free), else the
-- first 32 bits of its SHA-1. Returns the day it was counted in (its end, the next local
-- midnight), nil when not counted.
local function pace_take(a, kind, mode, jitter_key)
  if not a.tz then return nil end
  local day
  if kind == 'root' or a.cc ~= '0' then
    if mode == 'relax' then a.nr = (a.nr or 0) + 1 else a.nf = (a.nf or 0) + 1 end
    day = a.de
  end
  local gap = a.gm or 0
  if a.gj and a.gj > 0 then
    local tail = string.sub(jitter_key, -8)
    local bits = string.find(tail, '^%x%x%x%x%x%x%x%x$') and tonumber(tail, 16)
      or tonumber(string.sub(redis.sha1hex(jitter_key), 1, 8), 16)
    gap = gap + bits % (a.gj + 1)
  end
  if gap == 0 then
    a.gp, a.gr, a.gu = nil, nil, nil
  elseif a.gp then -- held already (a child task): held longer
    a.gr = NOW + gap
  else
    a.gu = NOW + gap
  end
  return day
end

-- A submission the upstream refused (it never ran): its count given back, if the day it was
-- counted in (`day`, pace_take's) is still the account's today. Its gap stays.
local function pace_untake(a, mode, day)
  if day == nil or a.de ~= day then return end
  if mode == 'relax' then a.nr = math.max(0, (a.nr or 0) - 1)
  else a.nf = math.max(0, (a.nf or 0) - 1) end
end
