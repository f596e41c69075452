-- selection.lua: one tier's decision (after tenants.lua), over indexes.lua's selection
-- indexes or a tag-limited key's accounts: the best free account, else why the task waits.
local PICK = 8 -- candidates looked at by strategy before the most-fast-time fallback

-- The first of `ids` not excluded with fast time >= cost (any fast time when cost is nil).
local function first_open(ids, ex, cost)
  for _, id in ipairs(ids) do
    if not ex[id] and (cost == nil or acct_load(id).fl >= cost) then return id end
  end
  return nil
end

-- The free account of tier `T` with the most fast time, if that is >= cost.
local function most_free_fast(T, cost, ex, nex)
  local top = redis.call('ZREVRANGE', T.ff, '0', arg(nex), 'WITHSCORES')
  for i = 1, #top, 2 do
    if not ex[top[i]] then
      if tonumber(top[i + 1]) < cost then return nil end
      return top[i]
    end
  end
  return nil
end

-- The best free fast account of tier `T` by strategy with fast time >= cost: the first PICK
-- candidates by score, then the free account with the most fast time. Never misses a
-- feasible account. A candidate not current (indexes.lua: a pacing change due, a gap not
-- held yet) is brought up to date first (it may leave the index: the look starts again;
-- each such step is a change made once).
local function pick_fast(T, cost, ex, nex)
  for _ = 1, PICK do
    local id = first_open(redis.call('ZRANGE', T.fs, '0', arg(PICK + nex - 1)), ex, cost)
      or most_free_fast(T, cost, ex, nex)
    if id == nil or current(id) then return id end
  end
  return nil
end

-- Most fast time on any account of the sets `keys` (excluded ones skipped): -1 for none.
local function most_fast_time(keys, ex, nex)
  local best, who = -1, nil
  for _, key in ipairs(keys) do
    local top = redis.call('ZREVRANGE', key, '0', arg(nex), 'WITHSCORES')
    for i = 1, #top, 2 do
      if not ex[top[i]] then
        if tonumber(top[i + 1]) > best then best, who = tonumber(top[i + 1]), top[i] end
        break
      end
    end
  end
  return best, who
end

local function pick_relax(T, ex, nex)
  for _ = 1, PICK do
    local id = first_open(redis.call('ZRANGE', T.rs, '0', arg(nex)), ex, nil)
    if id == nil or current(id) then return id end
  end
  return nil
end

-- Is the account inside a gap routing has not held yet (pacing.lua)? Read from the account
-- when this call has it, else its two fields: a tag-limited key's accounts (O(their number))
-- are judged without holding them, as if their gaps were held.
local function in_unheld_gap(id)
  local a = loaded[id]
  if a == nil then
    local f = redis.call('HMGET', k_acct(id), 'gu', 'gp')
    a = {gu = tonumber(f[1]), gp = f[2] or nil} -- a missing field reads false
  end
  return a and gap_unheld(a) or false
end

-- The accounts carrying any of `tags` (a client key limited to some account tags).
local function tagged(tags)
  local seen, out = {}, {}
  for _, tag in ipairs(tags) do
    for _, id in ipairs(redis.call('SMEMBERS', k_tag(tag))) do
      if not seen[id] then
        seen[id] = true
        out[#out + 1] = id
      end
    end
  end
  return out
end

local function reason_of(id, class) return pace_reason(acct_load(id), class) end

-- The held fast account of tier `T` with fast time >= cost whose pacing changes first, among
-- the first HELD_LOOK paced accounts by next change (`ix:pace`); nil when none is there. Its
-- rule is the one a staged task names: the one likeliest to let it go first (relax's held
-- index is in that order already).
local HELD_LOOK = 16
local function first_held_fast(T, cost, ex)
  for _, id in ipairs(redis.call('ZRANGE', K.pace, '0', arg(HELD_LOOK - 1))) do
    if not ex[id] then
      local left = redis.call('ZSCORE', T.fp, id)
      if left and tonumber(left) >= cost then return id end
    end
  end
  return nil
end

-- One tier's fast decision: {'R', ...} | {'S', reason} | nil when no account of the tier
-- has the fast time (free, busy or held by pacing). `members`: a tag-limited key's
-- accounts (O(their number)); nil: the whole tier by its indexes (O(log N)).
local function fast_tier(T, mode, cost, ex, nex, members)
  if members then
    local best, best_score, busy, held = nil, nil, false, nil
    for _, id in ipairs(members) do
      if not ex[id] then
        local free = redis.call('ZSCORE', T.ff, id)
        local left = tonumber(free or redis.call('ZSCORE', T.fb, id) or -1)
        if left >= cost and in_unheld_gap(id) then
          held = held or id
        elseif left >= cost then
          if free then
            local score = tonumber(redis.call('ZSCORE', T.fs, id))
            if (best_score == nil or score < best_score) and pace_fresh(id) then
              best, best_score = id, score
            end
          end
          busy = true
        elseif tonumber(redis.call('ZSCORE', T.fp, id) or -1) >= cost then
          held = held or id
        end
      end
    end
    if best then return {'R', best, mode, cost, 'routed'} end
    if busy then return {'S', 'fast_slots_busy'} end
    if held then return {'S', reason_of(held, 'f')} end
    return nil
  end
  local id = pick_fast(T, cost, ex, nex)
  -- Nothing free: hold the gaps not met yet (a burst of candidates in their gaps at the front
  -- of the index may have used up the pick's look), then look again; a decision that stages
  -- has seen every gap.
  if id == nil and gaps_held() > 0 then id = pick_fast(T, cost, ex, nex) end
  if id then return {'R', id, mode, cost, 'routed'} end
  if most_fast_time({T.ff, T.fb}, ex, nex) >= cost then return {'S', 'fast_slots_busy'} end
  local left, held = most_fast_time({T.fp}, ex, nex)
  if left >= cost then return {'S', reason_of(first_held_fast(T, cost, ex) or held, 'f')} end
  return nil
end

-- Whether an excluded account counts in an aggregate flag (see indexes.lua's standing).
local function excluded_count(ex, test)
  local n = 0
  for xid in pairs(ex) do
    local x = acct_load(xid)
    if x and test(x) then n = n + 1 end
  end
  return n
end

-- One tier's relax decision: {'R', ...} | {'S', reason} | nil when the tier has no
-- relax-capable account (free, busy or held by pacing).
local function relax_tier(T, ex, nex, decision, members)
  local capable_ok = function(x)
    return x.st == 'active' and relax_capable(x) and pace_root_ok(x, 'r')
      and tier(x) == T
  end
  if members then
    local best, best_score, busy, held = nil, nil, false, nil
    for _, id in ipairs(members) do
      if not ex[id] then
        local x = acct_load(id)
        local gapped = x ~= nil and gap_unheld(x) -- judged as if held (fast_tier)
        local score = not gapped and redis.call('ZSCORE', T.rs, id)
        if score and (best_score == nil or tonumber(score) < best_score) and pace_fresh(id) then
          best, best_score = id, tonumber(score)
        end
        if capable_ok(x) then
          if gapped then held = held or id else busy = true end
        end
        if not held and redis.call('ZSCORE', T.rp, id) then held = id end
      end
    end
    if best then return {'R', best, 'relax', 0, decision} end
    if busy then return {'S', 'relax_slots_busy'} end
    if held then return {'S', reason_of(held, 'r')} end
    return nil
  end
  local id = pick_relax(T, ex, nex)
  if id == nil and gaps_held() > 0 then id = pick_relax(T, ex, nex) end -- as fast_tier
  if id then return {'R', id, 'relax', 0, decision} end
  -- Relax-capable accounts of the tier that pacing doesn't hold: capable ones minus held ones.
  local t = redis.call('HMGET', K.agg, 'rcap', 'rcb')
  local capable = tonumber(t[2] or 0)
  if T == IX.p then capable = tonumber(t[1] or 0) - capable end
  local ok = capable - redis.call('ZCARD', T.rp)
  if ok - excluded_count(ex, capable_ok) > 0 then return {'S', 'relax_slots_busy'} end
  for _, hid in ipairs(redis.call('ZRANGE', T.rp, '0', arg(nex))) do
    if not ex[hid] then return {'S', reason_of(hid, 'r')} end
  end
  return nil
end
