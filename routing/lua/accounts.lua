-- accounts.lua: the first of the libraries of shared definitions (in order: accounts.lua,
-- pacing.lua, indexes.lua, history.lua, tenants.lua, selection.lua, decide.lua, staging.lua;
-- a definition uses only those before it). This one: the conventions, the key layout, the
-- account hash and its codec, and what an account's plan allows. A script body is loaded
-- with the library definitions it uses, directly or through others (routing/prelude.py):
-- each starts at column 0, after its comment.
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

-- Per call (`begin`): the key base (ARGV[1]) and now (ARGV[2], unix ms; NOW_S as sent: an
-- argument Redis needn't format).
local BASE, NOW, NOW_S

-- Key names are made on first use (a script uses a few of them; building a string costs
-- time at every call): `keyset(names)` is a metatable (made once) whose tables build each
-- name from its suffix after the base, and keep it for the rest of the call.
local function keyset(names)
  return {__index = function(t, name)
    local key = BASE .. names[name]
    t[name] = key
    return key
  end}
end

local K_NAMES = keyset({
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
  gap = 'ix:gap', -- accounts in a gap routing has not met (pacing.lua), by its end (ms)
  gapx = 'ix:gapx', -- the same, on accounts something else holds (not active, hours, caps)
  capo = 'ix:capo', -- active accounts in hours that caps hold though one class is below its
                    -- cap (it can't run the other: a Basic plan at its fast cap), by next
                    -- pacing change (ms): what the `held` aggregate doesn't count
  pref = 'ix:pref', -- paced accounts whose plan needs computing again (tick)
  stk = 'stk', kvf = 'kvf', kif = 'kif', -- client keys' fair queue (tenants.lua)
})
-- The selection indexes of each tier: primary accounts, and backups (used only when no
-- primary can take a task: decide.lua).
local IXP_NAMES = keyset({fs = 'ix:fs', ff = 'ix:ff', fb = 'ix:fb', rs = 'ix:rs',
                          fp = 'ix:fp', rp = 'ix:rp'})
local IXB_NAMES = keyset({fs = 'ix:bfs', ff = 'ix:bff', fb = 'ix:bfb', rs = 'ix:brs',
                          fp = 'ix:bfp', rp = 'ix:brp'})

-- Per call (`begin`): the pool's keys `K`, each tier's indexes `IX.p` and `IX.b`, the
-- accounts read so far (`loaded`, see acct_load) and the other per-call caches (`CALL`).
local K, IX, loaded, CALL

-- The key names of the last few key bases: a pure function of the base, so as a Redis
-- Function (whose locals outlive a call) a pool's calls share them, and build each name
-- once. Dropped whole past KEYSET_CAP bases (a server shared by many pools, the tests).
local KEYSETS, NKEYSETS, KEYSET_CAP = {}, 0, 64

-- Every script's first step (routing/prelude.py puts it there): as a Redis Function the
-- libraries' locals outlive a call, so nothing a call learnt may reach the next one (only
-- key names, which the base alone decides).
local function begin(argv)
  BASE, NOW, NOW_S = argv[1], tonumber(argv[2]), argv[2]
  local names = KEYSETS[BASE]
  if not names then
    if NKEYSETS >= KEYSET_CAP then KEYSETS, NKEYSETS = {}, 0 end
    names = {setmetatable({}, K_NAMES), {p = setmetatable({name = 'p'}, IXP_NAMES),
                                          b = setmetatable({name = 'b'}, IXB_NAMES)}}
    KEYSETS[BASE], NKEYSETS = names, NKEYSETS + 1
  end
  K, IX = names[1], names[2]
  loaded, CALL = {}, {}
end

local function k_acct(id) return BASE .. 'acct:' .. id end
local function k_hist(id) return BASE .. 'hist:' .. id end
local function k_res(task) return BASE .. 'res:' .. task end
local function k_stg(task) return BASE .. 'stg:' .. task end
local function k_tag(tag) return BASE .. 'tag:' .. tag end -- set of bot_ids carrying `tag`

-- The account fields that hold numbers (the rest are strings), as a list and as a set.
local NUMERIC_FIELDS = {'w', 'fs', 'rs', 'mf', 'dfl', 'drn', 'su', 'rn', 'fl', 'fr', 'fi', 'ri',
                        'kf', 'kr', 'nf', 'nr', 'gm', 'gj', 'gr', 'gu', 'pu', 'pw', 'de', 'dn'}
local NUMERIC = (function()
  local set = {}
  for i = 1, #NUMERIC_FIELDS do set[NUMERIC_FIELDS[i]] = true end -- (no ipairs at load)
  return set
end)()

-- Scores must reach ZADD exactly: Lua's default number formatting keeps 14 digits only.
local function n2s(x)
  if x % 1 == 0 and x > -9007199254740992 and x < 9007199254740992 then
    return string.format('%d', x)
  end
  return string.format('%.17g', x)
end

-- A number argument of redis.call: Redis formats a number with %.17g at every call (about as
-- long as a short command takes), so small whole numbers (counts, deltas, ranges) are passed
-- as strings made once per server (a Redis Function's locals outlive a call); others as
-- they are.
local SMALL, SMALL_MAX = {}, 4096
local function arg(x)
  if x < -SMALL_MAX or x > SMALL_MAX or x % 1 ~= 0 then return x end
  local s = SMALL[x]
  if not s then
    s = string.format('%d', x)
    SMALL[x] = s
  end
  return s
end

-- A hash as a table, made by Redis: the reply as a RESP3 map (a loop over a RESP2 reply's
-- pairs costs about a fifth more).
local function hash_table(key)
  redis.setresp(3)
  local t = redis.call('HGETALL', key).map
  redis.setresp(2)
  return t
end

-- The accounts this call has read, by bot_id (false: absent), are kept in `loaded` (made by
-- begin) and kept current by acct_save, so an account read twice (a candidate, then its
-- reservation) is read from Redis once. A loaded account is never changed in place: callers
-- change a copy and save it (acct_save).
local function acct_load(id)
  local hit = loaded[id]
  if hit ~= nil then return hit or nil end
  local a = hash_table(k_acct(id))
  if next(a) == nil then
    loaded[id] = false
    return nil
  end
  a.id = id
  for i = 1, #NUMERIC_FIELDS do
    local f = NUMERIC_FIELDS[i]
    local v = a[f]
    if v then a[f] = v + 0 end -- coercion: tonumber's strtod without a C call per field
  end
  loaded[id] = a
  return a
end

-- Every field an account hash may hold (above, and pacing.lua's): what acct_save compares,
-- by index (one pass for both ways, cheaper than two of `pairs`, whose every step looks its
-- key up again). A field only a newer version knows is never written: kept as it is.
local FIELDS = {'n', 'p', 'ds', 'w', 'tg', 'fs', 'rs', 'mf', 'dfl', 'dst', 'drn', 'g', 'se',
                'st', 'sr', 'su', 'rn', 'fl', 'fr', 'fi', 'ri', 'tz', 'ah', 'ao', 'kf', 'kr',
                'cc', 'gm', 'gj', 'ti', 'ph', 'pu', 'pn', 'pw', 'de', 'dn', 'nf', 'nr', 'gu',
                'gp', 'gr', 'pz'}
local NFIELDS = #FIELDS

local function copy(a)
  local c = {}
  for f, v in pairs(a) do c[f] = v end
  return c
end

-- Does the account's plan include relax (basic has none)?
local function plan_has_relax(a) return a.p ~= 'basic' end

-- Can the account run relax work (its state and pacing aside): its plan has relax and it has
-- relax slots.
local function relax_capable(a) return plan_has_relax(a) and a.rs > 0 end
