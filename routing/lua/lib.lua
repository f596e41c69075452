-- lib.lua: the first prelude routing/scripts.py puts in front of every script body at load
-- time (then decide.lua, then the body). It holds the key layout, the account codec, the
-- eligibility indexes, the aggregates and the history, so every script counts the same way.
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

local BASE = ARGV[1]
local NOW = tonumber(ARGV[2])
local HISTORY = 10 -- entries kept per account (~100 B each: keeps an account near 1 KiB)
local Q = 1048576 -- 2^20: resolution of in_flight/slots ratios (exact for slots <= 1000)

local K = {
  meta = BASE .. 'meta', -- strategy, seq (staged order), gen (incarnations)
  agg = BASE .. 'agg', -- pool-wide aggregates, kept incrementally
  all = BASE .. 'accts', -- set of every bot_id
  fs = BASE .. 'ix:fs', -- fast-eligible with a free fast slot, by strategy score
  ff = BASE .. 'ix:ff', -- the same members, by fast seconds left
  fb = BASE .. 'ix:fb', -- fast-eligible with every fast slot busy, by fast seconds left
  rs = BASE .. 'ix:rs', -- relax-eligible with a free relax slot, by strategy score
  renew = BASE .. 'ix:renew', -- accounts with a renewal date, by renewal (ms)
  cool = BASE .. 'ix:cool', -- cooling accounts, by deadline (ms)
  lease = BASE .. 'leases', -- reservations, by lease deadline (ms)
  stq = BASE .. 'stq', -- staged tasks, FIFO: score = arrival sequence
  stdl = BASE .. 'stdl', -- staged tasks, by deadline (ms)
  stc = BASE .. 'stc', -- staged tasks per client id
  track = BASE .. 'track', -- tasks sent upstream, by next completion check (ms)
  trackb = BASE .. 'trackb', -- the deployment's budget of upstream GETs: tokens, at (ms)
}
local function k_acct(id) return BASE .. 'acct:' .. id end
local function k_hist(id) return BASE .. 'hist:' .. id end
local function k_res(task) return BASE .. 'res:' .. task end
local function k_stg(task) return BASE .. 'stg:' .. task end
local function k_tag(tag) return BASE .. 'tag:' .. tag end -- set of bot_ids carrying `tag`

local NUMERIC = {w = 1, fs = 1, rs = 1, mf = 1, dfl = 1, drn = 1, su = 1, rn = 1,
                 fl = 1, fr = 1, fi = 1, ri = 1}

-- Scores must reach ZADD exactly: Lua's default number formatting keeps 14 digits only.
local function n2s(x) return string.format('%.17g', x) end

local function hash_table(key)
  local raw = redis.call('HGETALL', key)
  local t = {}
  for i = 1, #raw, 2 do t[raw[i]] = raw[i + 1] end
  return t
end

local function acct_load(id)
  local raw = redis.call('HGETALL', k_acct(id))
  if #raw == 0 then return nil end
  local a = {id = id}
  for i = 1, #raw, 2 do
    local f, v = raw[i], raw[i + 1]
    if NUMERIC[f] then a[f] = tonumber(v) else a[f] = v end
  end
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

-- Which indexes an account belongs to: free fast, busy fast (with fast time), free relax.
local function eligible(a)
  if not a or a.st ~= 'active' then return false, false, false end
  local fast = a.se == 'fast' and a.fl > 0
  return fast and a.fi < a.fs, fast and a.fi >= a.fs, a.p ~= 'basic' and a.ri < a.rs
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

local function reindex(old, a)
  local id = (a or old).id
  local ofs, ofb, ors = eligible(old)
  local nfs, nfb, nrs = eligible(a)
  if nfs then
    local s = fs_score(a)
    if not (ofs and fs_score(old) == s) then redis.call('ZADD', K.fs, n2s(s), id) end
    if not (ofs and old.fl == a.fl) then redis.call('ZADD', K.ff, a.fl, id) end
  elseif ofs then
    redis.call('ZREM', K.fs, id)
    redis.call('ZREM', K.ff, id)
  end
  if nfb then
    if not (ofb and old.fl == a.fl) then redis.call('ZADD', K.fb, a.fl, id) end
  elseif ofb then
    redis.call('ZREM', K.fb, id)
  end
  if nrs then
    local s = rs_score(a)
    if not (ors and rs_score(old) == s) then redis.call('ZADD', K.rs, n2s(s), id) end
  elseif ors then
    redis.call('ZREM', K.rs, id)
  end
  local orn, nrn = old and old.rn, a and a.rn
  if nrn then
    if nrn ~= orn then redis.call('ZADD', K.renew, n2s(nrn), id) end
  elseif orn then
    redis.call('ZREM', K.renew, id)
  end
  local oc = old and old.st == 'cooling' and old.su
  local nc = a and a.st == 'cooling' and a.su
  if nc then
    if nc ~= oc then redis.call('ZADD', K.cool, n2s(nc), id) end
  elseif oc then
    redis.call('ZREM', K.cool, id)
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
    if a.p ~= 'basic' and a.rs > 0 then c.rcap = 1 end
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
