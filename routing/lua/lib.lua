-- lib.lua: the first library of definitions (then tenants.lua, then decide.lua): the key
-- layout, the account codec, the eligibility indexes, the aggregates and the history, so
-- every script counts the same way. A script body is loaded with the definitions it uses,
-- directly or through others (routing/prelude.py): each starts at column 0, after its comment.
--
-- Conventions shared by every script:
--   KEYS[1]   the pool's meta hash, `<prefix>:{pool}:meta`: names the cluster slot. Every other
--             key is built below from ARGV[1] and carries the same `{pool}` hash tag.
--   ARGV[1]   the key base `<prefix>:{pool}:` (routing.keys.Keys.base)
--   ARGV[2]   now, unix milliseconds, from the store's injected clock: scripts never read TIME
--   ARGV[3..] per script (see each script's header)
-- Units: fast time in whole GPU seconds; times and deadlines in unix milliseconds.
--
-- Account hash (`acct:<bot_id>`), short field names to keep it a small listpack:
--   n name, p plan, ds declared setting, w weight, tg tags (JSON), fs/rs fast/relax slots,
--   mf the plan's monthly fast seconds, dfl/dst/drn last declared fast seconds/state/renewal,
--   g incarnation (changes when a removed bot_id is created again),
--   se current setting, st state, sr state reason, su state until (ms, cooling only),
--   rn next renewal (ms), fl fast seconds left (unreserved), fr fast seconds reserved,
--   fi/ri fast/relax tasks in flight. Empty values are absent fields.
-- Pacing (present only on accounts with a profile; routing/pacing.py computes the plan):
--   tz time zone, ah/ao active/actions-only windows (display and export), kf/kr daily caps
--   fast(+turbo)/relax, cc '0' when child tasks don't count, gm/gj gap and jitter (ms),
--   ti 'backup' for the backup tier; the plan: ph phase now (a active | o actions-only |
--   x off), pu its end (ms), pn the next phase, pw its end, de/dn the next two local
--   midnights (ms); live: nf/nr jobs today, gp '1' inside a gap until gr (ms), pz '1' when
--   the plan's look-ahead is used up and the tick should compute a new one.

local BASE = ARGV[1]
local NOW = tonumber(ARGV[2])
local HISTORY = 10 -- entries kept per account (~100 B each: keeps an account near 1 KiB)
local Q = 1048576 -- 2^20: resolution of in_flight/slots ratios (exact for slots <= 1000)

-- Key names are made on first use (a script uses a few of them; building a string costs
-- time at every call): `names` gives each one's suffix after the base; `fields` (or {}) is
-- the table returned, with any other fields it should have.
local function keyset(names, fields)
  return setmetatable(fields or {}, {__index = function(t, name)
    local key = BASE .. names[name]
    t[name] = key
    return key
  end})
end

local K = keyset({
  meta = 'meta', -- strategy, seq (staged order), gen (incarnations)
  agg = 'agg', -- pool-wide aggregates, kept incrementally
  all = 'accts', -- set of every bot_id
  fs = 'ix:fs', -- fast-eligible with a free fast slot, by strategy score
  ff = 'ix:ff', -- the same members, by fast seconds left
  fb = 'ix:fb', -- fast-eligible with every fast slot busy, by fast seconds left
  rs = 'ix:rs', -- relax-eligible with a free relax slot, by strategy score
  renew = 'ix:renew', -- accounts with a renewal date, by renewal (ms)
  cool = 'ix:cool', -- cooling accounts, by deadline (ms)
  lease = 'leases', -- reservations, by lease deadline (ms)
  stq = 'stq', -- staged tasks, FIFO: score = arrival sequence
  stdl = 'stdl', -- staged tasks, by deadline (ms)
  stc = 'stc', -- staged tasks per client id
  track = 'track', -- tasks sent upstream, by next completion check (ms)
  trackb = 'trackb', -- the deployment's budget of upstream GETs: tokens, at (ms)
  fp = 'ix:fp', -- fast-capable but held by pacing, by fast seconds left
  rp = 'ix:rp', -- relax-capable but held by pacing, by next pacing change (ms)
  bfs = 'ix:bfs', bff = 'ix:bff', bfb = 'ix:bfb', -- backup tier:
  brs = 'ix:brs', bfp = 'ix:bfp', brp = 'ix:brp', -- the same six
  pace = 'ix:pace', -- paced accounts, by their next time-driven change (ms)
  pref = 'ix:pref', -- paced accounts whose plan needs computing again (tick)
})
-- The selection indexes of each tier: primary accounts, and backups (used only when no
-- primary can take a task: decide.lua).
local IX = {
  p = keyset({fs = 'ix:fs', ff = 'ix:ff', fb = 'ix:fb', rs = 'ix:rs', fp = 'ix:fp',
              rp = 'ix:rp'}, {name = 'p'}),
  b = keyset({fs = 'ix:bfs', ff = 'ix:bff', fb = 'ix:bfb', rs = 'ix:brs', fp = 'ix:bfp',
              rp = 'ix:brp'}, {name = 'b'}),
}
local function k_acct(id) return BASE .. 'acct:' .. id end
local function k_hist(id) return BASE .. 'hist:' .. id end
local function k_res(task) return BASE .. 'res:' .. task end
local function k_stg(task) return BASE .. 'stg:' .. task end
local function k_tag(tag) return BASE .. 'tag:' .. tag end -- set of bot_ids carrying `tag`

local NUMERIC = {w = 1, fs = 1, rs = 1, mf = 1, dfl = 1, drn = 1, su = 1, rn = 1,
                 fl = 1, fr = 1, fi = 1, ri = 1, kf = 1, kr = 1, nf = 1, nr = 1, gm = 1,
                 gj = 1, gr = 1, pu = 1, pw = 1, de = 1, dn = 1}

-- Scores must reach ZADD exactly: Lua's default number formatting keeps 14 digits only.
local function n2s(x) return string.format('%.17g', x) end

local function hash_table(key)
  local raw = redis.call('HGETALL', key)
  local t = {}
  for i = 1, #raw, 2 do t[raw[i]] = raw[i + 1] end
  return t
end

-- The accounts this call has read, by bot_id (false: absent), kept current by acct_save, so
-- an account read twice (a candidate, then its reservation) is read from Redis once. A loaded
-- account is never changed in place: callers change a copy and save it (acct_save).
local loaded = {}

local function acct_load(id)
  local hit = loaded[id]
  if hit ~= nil then return hit or nil end
  local raw = redis.call('HGETALL', k_acct(id))
  if #raw == 0 then
    loaded[id] = false
    return nil
  end
  local a = {id = id}
  for i = 1, #raw, 2 do
    local f, v = raw[i], raw[i + 1]
    if NUMERIC[f] then a[f] = tonumber(v) else a[f] = v end
  end
  loaded[id] = a
  return a
end

local function copy(a)
  local c = {}
  for f, v in pairs(a) do c[f] = v end
  return c
end

-- Selection indexes ---------------------------------------------------------------------

local strategy_cache
local function strategy()
  if not strategy_cache then
    strategy_cache = redis.call('HGET', K.meta, 'strategy') or 'least_busy'
  end
  return strategy_cache
end

-- Pacing ---------------------------------------------------------------------------------
-- `class`: 'f' fast/turbo work, 'r' relax work. All of it reads fields only: index
-- membership stays a pure function of the account's fields; time moves the fields
-- (pace_advance) at the instants the account's `ix:pace` score names.

local function tier(a) return a.ti == 'backup' and IX.b or IX.p end

local function capped(a, class)
  if class == 'f' then return a.kf ~= nil and (a.nf or 0) >= a.kf end
  return a.kr ~= nil and (a.nr or 0) >= a.kr
end

local function in_hours(a) return a.ph == nil or a.ph == 'a' end

-- May pacing let the account take a new root task of `class` now?
local function pace_root_ok(a, class)
  return in_hours(a) and not a.gp and not capped(a, class)
end

-- The rule that holds a root task of `class` on this account (nil: none).
local function pace_reason(a, class)
  if a.ph == 'o' then return 'paced:actions_only' end
  if a.ph == 'x' then return 'paced:outside_hours' end
  if capped(a, class) then return 'paced:daily_cap' end
  if a.gp then return 'paced:gap' end
  return nil
end

-- The rule that holds a child task of `class` on its parent's account (nil: none).
local function pace_child_reason(a, class)
  if a.ph == 'x' then return 'paced:outside_hours' end
  if a.cc ~= '0' and capped(a, class) then return 'paced:daily_cap' end
  return nil
end

-- The account's next time-driven change (ms): a phase edge, a local midnight, a gap's end.
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
end

-- Count a submission on its account (caps) and start its gap. `jitter_key` makes the
-- gap's random part: the first 32 bits of SHA-1(task id), modulo jitter + 1 ms.
local function pace_take(a, kind, mode, jitter_key)
  if not a.tz then return end
  if kind == 'root' or a.cc ~= '0' then
    if mode == 'relax' then a.nr = (a.nr or 0) + 1 else a.nf = (a.nf or 0) + 1 end
  end
  local gap = a.gm or 0
  if a.gj and a.gj > 0 then
    gap = gap + tonumber(string.sub(redis.sha1hex(jitter_key), 1, 8), 16) % (a.gj + 1)
  end
  if gap > 0 then a.gp, a.gr = '1', NOW + gap else a.gp, a.gr = nil, nil end
end

-- Does the account's plan include relax (basic has none)?
local function plan_has_relax(a) return a.p ~= 'basic' end

-- Can the account run relax work (its state and pacing aside): its plan has relax and it has
-- relax slots.
local function relax_capable(a) return plan_has_relax(a) and a.rs > 0 end

-- Which indexes an account belongs to: free fast, busy fast (with fast time), free relax,
-- fast-capable held by pacing, relax-capable held by pacing.
local function eligible(a)
  if not a or a.st ~= 'active' then return false, false, false, false, false end
  local fast = a.se == 'fast' and a.fl > 0
  local okf, okr = pace_root_ok(a, 'f'), pace_root_ok(a, 'r')
  local relax = relax_capable(a)
  return fast and okf and a.fi < a.fs, fast and okf and a.fi >= a.fs,
         relax and okr and a.ri < a.rs, fast and not okf, relax and not okr
end

-- floor(num/den) at 2^-20 resolution in the high bits, the fast-time tie-break (more is
-- better, so inverted) in the low `bits`: an integer below 2^53, exact in a double.
local function load_score(num, den, left, bits)
  local top = 2 ^ bits - 1
  if left > top then left = top end
  if left < 0 then left = 0 end
  return math.floor(num * Q / den) * 2 ^ bits + (top - left)
end

local function fs_score(a)
  local s = strategy()
  if s == 'most_fast_left' then return -a.fl end
  if s == 'weighted' then return load_score(a.fi, a.w, a.fl, 23) end
  return load_score(a.fi, a.fs, a.fl, 33) -- least_busy
end

local function rs_score(a)
  if strategy() == 'weighted' then return math.floor(a.ri * Q / a.w) end
  return math.floor(a.ri * Q / a.rs)
end

-- Every sorted set the account is in, with its score: a pure function of its fields.
local function memberships(a)
  local m = {}
  if not a then return m end
  local ffree, fbusy, rfree, fpaced, rpaced = eligible(a)
  local T = tier(a)
  if ffree then m[T.fs], m[T.ff] = fs_score(a), a.fl end
  if fbusy then m[T.fb] = a.fl end
  if rfree then m[T.rs] = rs_score(a) end
  if fpaced then m[T.fp] = a.fl end
  local due = pace_next(a)
  if rpaced then m[T.rp] = due or 2 ^ 52 end
  if due then m[K.pace] = due end
  if a.pz then m[K.pref] = 0 end
  if a.rn then m[K.renew] = a.rn end
  if a.st == 'cooling' and a.su then m[K.cool] = a.su end
  return m
end

local function reindex(old, a)
  local id = (a or old).id
  local before, after = memberships(old), memberships(a)
  for key, score in pairs(after) do
    if before[key] ~= score then redis.call('ZADD', key, n2s(score), id) end
  end
  for key in pairs(before) do
    if after[key] == nil then redis.call('ZREM', key, id) end
  end
end

-- Pool-wide aggregates: each account contributes a pure function of its fields, so applying
-- the difference between its old and new contribution keeps the totals exact.
local function contribution(a)
  local c = {}
  if not a then return c end
  c['n|' .. a.p .. '|' .. a.st .. '|' .. a.se] = 1
  c.fl = a.fl
  if a.st == 'active' then
    c.fc, c.fu, c.rc, c.ru = a.fs, a.fi, a.rs, a.ri
    if relax_capable(a) then
      c.rcap = 1
      if a.ti == 'backup' then c.rcb = 1 end
    end
    -- Pacing's totals count only what pacing brings (backups, held accounts), so a pool whose
    -- totals were kept before pacing existed has them right: absent fields read 0.
    if a.ti == 'backup' then c.ab = 1 elseif not in_hours(a) then c.aoff = 1 end
    if not in_hours(a) or a.gp or (capped(a, 'f') and capped(a, 'r')) then c.held = 1 end
  end
  return c
end

local function reaggregate(old, a)
  local co, cn = contribution(old), contribution(a)
  for f, v in pairs(cn) do
    local d = v - (co[f] or 0)
    if d ~= 0 then redis.call('HINCRBY', K.agg, f, d) end
  end
  for f, v in pairs(co) do
    if cn[f] == nil and v ~= 0 then redis.call('HINCRBY', K.agg, f, -v) end
  end
end

-- Write `a` (nil: delete) over `old` (nil: create), with its indexes and aggregates.
-- Keep the per-tag sets (tag-limited keys route among them) in step with an account's tags.
local function retag(old, a)
  local before = (old and old.tg ~= nil and old.tg ~= '') and old.tg or '[]'
  local after = (a and a.tg ~= nil and a.tg ~= '') and a.tg or '[]'
  if before == after then return end
  local id = (a or old).id
  for _, tag in ipairs(cjson.decode(before)) do redis.call('SREM', k_tag(tag), id) end
  for _, tag in ipairs(cjson.decode(after)) do redis.call('SADD', k_tag(tag), id) end
end

local function acct_save(old, a)
  retag(old, a)
  if a == nil then
    redis.call('DEL', k_acct(old.id))
    redis.call('SREM', K.all, old.id)
  else
    local set, del = {}, {}
    for f, v in pairs(a) do
      if f ~= 'id' and (old == nil or old[f] ~= v) then
        set[#set + 1] = f
        set[#set + 1] = v
      end
    end
    if old then
      for f in pairs(old) do
        if a[f] == nil then del[#del + 1] = f end
      end
    else
      redis.call('SADD', K.all, a.id)
    end
    if #set > 0 then redis.call('HSET', k_acct(a.id), unpack(set)) end
    if #del > 0 then redis.call('HDEL', k_acct(a.id), unpack(del)) end
  end
  reindex(old, a)
  reaggregate(old, a)
  loaded[(a or old).id] = a or false
end

-- Changes worth an entry in the account's history ----------------------------------------

local function remember(id, what, from, to, reason)
  local key = k_hist(id)
  redis.call('LPUSH', key, cjson.encode({at = NOW / 1000, what = what, from = from, to = to,
                                         reason = reason}))
  redis.call('LTRIM', key, 0, HISTORY - 1)
end

local function change_setting(a, to, reason)
  if a.se ~= to then
    remember(a.id, 'setting', a.se, to, reason)
    a.se = to
  end
end

-- `until_ms` only matters (and is only kept) for cooling.
local function change_state(a, to, until_ms, reason)
  if to ~= 'cooling' then until_ms = nil end
  if a.st ~= to or a.su ~= until_ms then remember(a.id, 'state', a.st, to, reason) end
  a.st, a.su = to, until_ms
  if reason == '' then a.sr = nil else a.sr = reason end
end

-- `seconds` is the account's fast time as Midjourney reports it: jobs in flight are not
-- charged yet, so what they reserved is taken out of it. None left switches the setting to
-- relax; some restores the declared setting.
local function change_fast(a, seconds, reason)
  local left = seconds - a.fr
  if left < 0 then left = 0 end
  if left ~= a.fl then
    remember(a.id, 'fast_time', a.fl, left, reason)
    a.fl = left
  end
  if seconds <= 0 then change_setting(a, 'relax', reason) else change_setting(a, a.ds, reason) end
end

-- Bring one account's pacing up to date through the funnel (it may be gone).
local function pace_apply(id)
  local old = acct_load(id)
  if not old then
    redis.call('ZREM', K.pace, id)
    return
  end
  local a = copy(old)
  pace_advance(a)
  acct_save(old, a)
end

-- Apply pacing changes due by now to up to `limit` accounts, earliest first, through the
-- funnel (the tick, and every decision before it looks at the indexes). Returns their ids.
local function pace_due(limit)
  local ids = redis.call('ZRANGEBYSCORE', K.pace, '-inf', NOW, 'LIMIT', 0, limit)
  for _, id in ipairs(ids) do pace_apply(id) end
  return ids
end

-- True when the account has no pacing change due; else applies it (it may leave the
-- selection indexes) and returns false: the caller looks again.
local function pace_fresh(id)
  local due = redis.call('ZSCORE', K.pace, id)
  if not due or tonumber(due) > NOW then return true end
  pace_apply(id)
  return false
end
