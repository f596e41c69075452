-- indexes.lua: where an account stands (after accounts.lua and pacing.lua): the selection
-- indexes it belongs to and their scores, the pool-wide aggregates, the per-tag sets, and
-- acct_save, the one function through which every change to an account is written; then
-- pacing changes due by now, applied through it.
local Q = 1048576 -- 2^20: resolution of in_flight/slots ratios (exact for slots <= 1000)
local SPAN = {[23] = 2 ^ 23, [33] = 2 ^ 33} -- the tie-break's room, by its bits (load_score)
local NEVER = 2 ^ 52 -- the `ix:rp` score of an account held with no change ahead

-- The pool's strategy, read once per call.
local function strategy()
  if not CALL.strategy then
    CALL.strategy = redis.call('HGET', K.meta, 'strategy') or 'least_busy'
  end
  return CALL.strategy
end

-- Which tier's indexes the account is in.
local function tier(a) return a.ti == 'backup' and IX.b or IX.p end

-- floor(num/den) at 2^-20 resolution in the high bits, the fast-time tie-break (more is
-- better, so inverted) in the low `bits`: an integer below 2^53, exact in a double.
local function load_score(num, den, left, bits)
  local span = SPAN[bits]
  local top = span - 1
  if left > top then left = top end
  if left < 0 then left = 0 end
  return math.floor(num * Q / den) * span + (top - left)
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

-- The pool-wide aggregates an account adds to besides its `n|plan|state|setting` count, by
-- their place in a standing's `c` (absent: 0).
local AGG = {'fl', 'flh', 'flx', 'fc', 'fu', 'rc', 'ru', 'rcap', 'rcb', 'ab', 'aoff', 'held'}
local NAGG = #AGG

-- Where an account stands, a pure function of its fields: every sorted set it is in with its
-- score (`m`: free fast, busy fast (with fast time), free relax, fast-capable and
-- relax-capable held by pacing, and the time-driven ones), and what it adds to the pool-wide
-- aggregates (`c`: AGG's, and `c.n` the name of its count): applying the difference between
-- an account's old and new standing keeps both exact.
local function standing(a)
  local m = {}
  if not a then return m, {} end
  local st, fl, T = a.st, a.fl, tier(a)
  local hours, okf, okr, capped_both = pace_view(a)
  local due = pace_next(a)
  -- Fast time routing can't spend (`flx`: not active, setting relax) and the part of what it
  -- can that pacing holds now (`flh`): the usable fast time is fl - flx, and neither changes
  -- when an unpaced account's fast time does (recount_fast.lua sets both once per start).
  local flh, flx, fc, fu, rc, ru, rcap, rcb, ab, aoff, held
  if st == 'active' then
    if a.se == 'fast' then
      if not okf then flh = fl end
      if fl > 0 then
        if not okf then m[T.fp] = fl
        elseif a.fi < a.fs then m[T.fs], m[T.ff] = fs_score(a), fl
        else m[T.fb] = fl end
      end
    else
      flx = fl
    end
    if relax_capable(a) then
      if not okr then m[T.rp] = due or NEVER
      elseif a.ri < a.rs then m[T.rs] = rs_score(a) end
      rcap = 1
      if a.ti == 'backup' then rcb = 1 end
    end
    fc, fu, rc, ru = a.fs, a.fi, a.rs, a.ri
    -- Pacing's totals count only what pacing brings (backups, held accounts), so a pool whose
    -- totals were kept before pacing existed has them right: absent fields read 0.
    if a.ti == 'backup' then ab = 1 elseif not hours then aoff = 1 end
    if not hours or a.gp or capped_both then held = 1
    -- (here okf/okr say whether each cap is reached) `held` as kept before: see K.capo
    elseif okf ~= okr and not can_run(a, okf and 'f' or 'r') then m[K.capo] = due or NEVER end
  else
    flx = fl
  end
  if due then m[K.pace] = due end
  -- A gap not held yet: held before a decision stages, counted out of "eligible now" where
  -- it holds the account back (`ix:gap`), seen by paced_past until it ends (both; the tick
  -- drops ended ones: harmless to a later diff).
  if a.gu and not a.gp then
    if gap_matters(a) then m[K.gap] = a.gu else m[K.gapx] = a.gu end
  end
  if a.pz then m[K.pref] = 0 end
  if a.rn then m[K.renew] = a.rn end
  if st == 'cooling' and a.su then m[K.cool] = a.su end
  return m, {fl, flh, flx, fc, fu, rc, ru, rcap, rcb, ab, aoff, held,
             n = 'n|' .. a.p .. '|' .. st .. '|' .. a.se}
end

local function reindex(id, before, after)
  for key, score in pairs(after) do
    if before[key] ~= score then redis.call('ZADD', key, n2s(score), id) end
  end
  for key in pairs(before) do
    if after[key] == nil then redis.call('ZREM', key, id) end
  end
end

local function reaggregate(co, cn)
  for i = 1, NAGG do
    local d = (cn[i] or 0) - (co[i] or 0)
    if d ~= 0 then redis.call('HINCRBY', K.agg, AGG[i], arg(d)) end
  end
  if co.n ~= cn.n then
    if co.n then redis.call('HINCRBY', K.agg, co.n, '-1') end
    if cn.n then redis.call('HINCRBY', K.agg, cn.n, '1') end
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
    for i = 1, NFIELDS do
      local f = FIELDS[i]
      local v = a[f]
      if v ~= (old and old[f]) then
        if v == nil then
          del[#del + 1] = f
        else
          set[#set + 1] = f
          set[#set + 1] = type(v) == 'number' and arg(v) or v
        end
      end
    end
    if not old then redis.call('SADD', K.all, a.id) end
    if #set > 0 then redis.call('HSET', k_acct(a.id), unpack(set)) end
    if #del > 0 then redis.call('HDEL', k_acct(a.id), unpack(del)) end
  end
  local mo, co = standing(old)
  local mn, cn = standing(a)
  reindex((a or old).id, mo, mn)
  reaggregate(co, cn)
  loaded[(a or old).id] = a or false
end

-- Pacing changes due by now, applied through acct_save ----------------------------------

local PACE_BATCH = 32 -- due pacing changes applied before each decision (the tick: more)

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
  local ids = redis.call('ZRANGEBYSCORE', K.pace, '-inf', NOW_S, 'LIMIT', '0', arg(limit))
  for _, id in ipairs(ids) do pace_apply(id) end
  return ids
end

-- True when the account has no pacing change due; else applies it (it may leave the
-- selection indexes) and returns false: the caller looks again. Its fields say when (its
-- `ix:pace` score is pace_next of them: standing), so an account read already costs
-- no command here.
local function pace_fresh(id)
  local a = acct_load(id)
  local due = a and pace_next(a)
  if not due or due > NOW then return true end
  pace_apply(id)
  return false
end

-- Routing has met the account inside a gap it does not hold yet (pacing.lua): hold it now
-- (`gp` until the gap's end: out of the selection indexes, the end in `ix:pace`), through the
-- funnel. Returns whether it did.
local function gap_hold(id)
  local old = acct_load(id)
  if not (old and gap_unheld(old)) then return false end
  local a = copy(old)
  a.gp, a.gr, a.gu = '1', old.gu, nil
  acct_save(old, a)
  return true
end

-- Is a candidate current: no pacing change due, no gap it does not hold yet? Else brings
-- it up to date (it may leave the selection indexes) and returns false: look again.
local function current(id)
  return pace_fresh(id) and not gap_hold(id)
end

local GAP_BATCH = 32 -- gaps not yet held that a decision about to stage holds (PACE_BATCH's role)

-- Before a decision stages: hold the running gaps routing has not met (up to GAP_BATCH, the
-- earliest-ending first; those on accounts something else holds too, so that the held
-- accounts' order by next change, `ix:rp`, counts their gaps), so the reason it gives and
-- paced_past see every gap as the rules state them. Each gap is held once: amortised, a gap
-- costs at most what holding it at its start would. Returns how many it held.
local function gaps_held()
  local n = 0
  for _, key in ipairs({K.gap, K.gapx}) do
    local ids = redis.call('ZRANGEBYSCORE', key, '(' .. NOW_S, '+inf',
                           'LIMIT', '0', arg(GAP_BATCH - n))
    for _, id in ipairs(ids) do
      if gap_hold(id) then n = n + 1 end
    end
    if n >= GAP_BATCH then break end
  end
  return n
end
