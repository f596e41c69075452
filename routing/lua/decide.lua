-- decide.lua: the third library (after lib.lua and tenants.lua): the routing rules over
-- lib.lua's indexes, taking a reservation, and staging. Shared by
-- reserve_root, reserve_child and dispatch_staged, so a staged task is decided again later
-- with exactly the rules it was staged under.

local PICK = 8 -- candidates looked at by strategy before the most-fast-time fallback
local PACE_BATCH = 32 -- due pacing changes applied before each decision (the tick: more)

-- "1,2,3" -> set of bot_id strings, count
local function exclusion(csv)
  local ex, n = {}, 0
  for id in string.gmatch(csv or '', '[^,]+') do
    ex[id] = true
    n = n + 1
  end
  return ex, n
end

-- The best free fast account of tier `T` by strategy with fast time >= cost: the first PICK
-- candidates by score, then the free account with the most fast time. Never misses a
-- feasible account. A candidate with a pacing change due is brought up to date first (it
-- may leave the index: the look starts again; each such step is a change made once).
local function pick_fast(T, cost, ex, nex)
  for _ = 1, PICK do
    local stale = false
    for _, id in ipairs(redis.call('ZRANGE', T.fs, 0, PICK + nex - 1)) do
      if not ex[id] and acct_load(id).fl >= cost then
        if pace_fresh(id) then return id end
        stale = true
        break
      end
    end
    if not stale then
      local top = redis.call('ZREVRANGE', T.ff, 0, nex, 'WITHSCORES')
      for i = 1, #top, 2 do
        if not ex[top[i]] then
          if tonumber(top[i + 1]) < cost then return nil end
          if pace_fresh(top[i]) then return top[i] end
          stale = true
          break
        end
      end
      if not stale then return nil end
    end
  end
  return nil
end

-- Most fast time on any account of the sets `keys` (excluded ones skipped): -1 for none.
local function most_fast_time(keys, ex, nex)
  local best, who = -1, nil
  for _, key in ipairs(keys) do
    local top = redis.call('ZREVRANGE', key, 0, nex, 'WITHSCORES')
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
    local stale = false
    for _, id in ipairs(redis.call('ZRANGE', T.rs, 0, nex)) do
      if not ex[id] then
        if pace_fresh(id) then return id end
        stale = true
        break
      end
    end
    if not stale then return nil end
  end
  return nil
end

-- Why nothing can take the task: a pool without any account says so.
local function no_capable()
  if redis.call('SCARD', K.all) == 0 then return 'pool_empty' end
  return 'no_relax_capable_account'
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
        if left >= cost then
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
  if id then return {'R', id, mode, cost, 'routed'} end
  if most_fast_time({T.ff, T.fb}, ex, nex) >= cost then return {'S', 'fast_slots_busy'} end
  local left, held = most_fast_time({T.fp}, ex, nex)
  if left >= cost then return {'S', reason_of(held, 'f')} end
  return nil
end

-- Whether an excluded account counts in an aggregate flag (see lib.lua's contribution).
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
        local score = redis.call('ZSCORE', T.rs, id)
        if score and (best_score == nil or tonumber(score) < best_score) and pace_fresh(id) then
          best, best_score = id, tonumber(score)
        end
        local x = acct_load(id)
        if capable_ok(x) then busy = true end
        if not held and redis.call('ZSCORE', T.rp, id) then held = id end
      end
    end
    if best then return {'R', best, 'relax', 0, decision} end
    if busy then return {'S', 'relax_slots_busy'} end
    if held then return {'S', reason_of(held, 'r')} end
    return nil
  end
  local id = pick_relax(T, ex, nex)
  if id then return {'R', id, 'relax', 0, decision} end
  -- Relax-capable accounts of the tier that pacing doesn't hold: capable ones minus held ones.
  local t = redis.call('HMGET', K.agg, 'rcap', 'rcb')
  local capable = tonumber(t[2] or 0)
  if T == IX.p then capable = tonumber(t[1] or 0) - capable end
  local ok = capable - redis.call('ZCARD', T.rp)
  if ok - excluded_count(ex, capable_ok) > 0 then return {'S', 'relax_slots_busy'} end
  for _, hid in ipairs(redis.call('ZRANGE', T.rp, 0, nex)) do
    if not ex[hid] then return {'S', reason_of(hid, 'r')} end
  end
  return nil
end

-- Is some primary account active and inside its hours (excluded ones don't count)? Active
-- accounts, minus active backups, minus active primaries outside their hours.
local function primary_active(ex, members)
  local in_hours_primary = function(x)
    return x.st == 'active' and in_hours(x) and x.ti ~= 'backup'
  end
  if members then
    for _, id in ipairs(members) do
      if not ex[id] and in_hours_primary(acct_load(id)) then return true end
    end
    return false
  end
  local fields = {'ab', 'aoff'} -- then the aggregate fields counting active accounts
  for _, p in ipairs({'basic', 'standard', 'pro', 'mega'}) do
    for _, se in ipairs({'fast', 'relax'}) do fields[#fields + 1] = 'n|' .. p .. '|active|' .. se end
  end
  local t = redis.call('HMGET', K.agg, unpack(fields))
  local n = -tonumber(t[1] or 0) - tonumber(t[2] or 0)
  for i = 3, #t do n = n + tonumber(t[i] or 0) end
  return n - excluded_count(ex, in_hours_primary) > 0
end

-- Primaries first: a reservation there wins, and so does their staging while some primary is
-- active (they have what the task needs; backups stay idle). Backups are tried when the
-- primaries have nothing that could run it, or first when no primary is active; a routed
-- reservation on a backup says why (`backup:<why>`). `active` caches primary_active (read
-- only when the primaries can't take the task now: one HGET).
local function by_tier(attempt, why, active)
  local dp = attempt(IX.p)
  if dp and dp[1] == 'R' then return dp end
  if active[1] == nil then active[1] = active.test() end
  if not active[1] then why = 'no_active_primary' end
  if active[1] and dp then return dp end
  local db = attempt(IX.b)
  if db and db[1] == 'R' then
    if db[5] == 'routed' then db[5] = 'backup:' .. why end
    return db
  end
  if active[1] then return db end
  return db or dp
end

-- A root task: {'R', bot_id, mode, cost, decision} | {'S', reason} | {'E', code}
-- `tags_json`: the key's allowed account tags as a JSON list, '' or '[]' for any account.
-- Primaries first; backups only when no primary has the fast time, or none is active
-- (then backups first). Pacing holds are stagings, never fallbacks to relax.
local function decide_root(mode, cost, ex, nex, tags_json)
  local members
  if tags_json ~= nil and tags_json ~= '' and tags_json ~= '[]' then
    members = tagged(cjson.decode(tags_json))
  end
  local active = {test = function() return primary_active(ex, members) end}
  local decision = 'routed'
  if mode ~= 'relax' then
    local d = by_tier(function(T) return fast_tier(T, mode, cost, ex, nex, members) end,
                      'no_fast_hours', active)
    if d then return d end
    decision = 'fallback_relax:no_fast_hours'
  end
  local d = by_tier(function(T) return relax_tier(T, ex, nex, decision, members) end,
                    'no_relax_primary', active)
  if d then return d end
  return {'E', no_capable()}
end

-- A child task on its parent's account: {'R', ...} | {'S', reason} | {'E', code, reason}
-- Pacing: actions-only hours allow it; outside all hours, or at the daily cap (unless the
-- account's children don't count), it waits. Gaps hold root tasks only.
local function decide_child(pid, pmode, cost)
  pace_fresh(pid)
  local a = acct_load(pid)
  if not a then return {'E', 'parent_unavailable', 'account_removed'} end
  if a.st == 'disabled' then return {'E', 'parent_unavailable', 'account_disabled'} end
  if a.st == 'paused' or a.st == 'cooling' then return {'S', 'parent_paused'} end
  local mode, c, decision = pmode, cost, 'inherited'
  if pmode ~= 'relax' then
    if a.se == 'relax' then
      mode, c, decision = 'relax', 0, 'inherited_relax:setting_relax'
    elseif a.fl < cost then
      mode, c, decision = 'relax', 0, 'inherited_relax:no_fast_time'
    end
  end
  if mode == 'relax' and not plan_has_relax(a) then
    return {'E', 'parent_unavailable', 'no_relax_on_basic'}
  end
  local held = pace_child_reason(a, mode == 'relax' and 'r' or 'f')
  if held then return {'S', held} end
  if mode == 'relax' then
    if a.ri < a.rs then return {'R', pid, mode, c, decision} end
  elseif a.fi < a.fs then
    return {'R', pid, mode, c, decision}
  end
  return {'S', 'parent_busy'}
end

-- Take the slot and the fast time; returns {'R', bot_id, mode, cost, decision, staged, task}.
-- `kind` root | child: what pacing counts (caps, gaps). `extra`: more fields for the
-- reservation (a client key's quota charge), or nil.
local function reserve(task, id, mode, cost, decision, lease_ms, staged, kind, extra)
  local old = acct_load(id)
  local a = copy(old)
  if mode == 'relax' then
    a.ri = a.ri + 1
  else
    a.fi, a.fl, a.fr = a.fi + 1, a.fl - cost, a.fr + cost
  end
  pace_take(a, kind, mode, task)
  acct_save(old, a)
  redis.call('HSET', k_res(task), 'b', id, 'm', mode, 'c', cost, 'd', decision, 's', staged,
             'g', a.g, unpack(extra or {}))
  redis.call('ZADD', K.lease, n2s(NOW + lease_ms), task)
  return {'R', tonumber(id), mode, cost, decision, staged, task}
end

-- What an already-known task id holds (a retried call): its reservation or its staging.
local function known(task)
  local r = redis.call('HMGET', k_res(task), 'b', 'm', 'c', 'd', 's')
  if r[1] then return {'R', tonumber(r[1]), r[2], tonumber(r[3]), r[4], tonumber(r[5]), task} end
  local reason = redis.call('HGET', k_stg(task), 'r')
  if reason then return {'S', reason} end
  return nil
end

-- A root task pinned to one account (a key allowed to pin sent `input.bot_id`): the rules of a
-- child task on its parent's account, except that a draining account takes no new root work
-- and a tag-limited key may pin only its tagged accounts. Decisions `pinned` and
-- `pinned_relax:<reason>`; waits `pinned_busy` / `pinned_paused`; {'E', 'pinned_unavailable', reason}.
local function decide_pinned(pid, mode, cost, tags_json)
  local st = redis.call('HGET', k_acct(pid), 'st')
  if st == 'draining' then return {'E', 'pinned_unavailable', 'account_draining'} end
  if st and tags_json ~= nil and tags_json ~= '' and tags_json ~= '[]' then
    local carried = false
    for _, tag in ipairs(cjson.decode(tags_json)) do
      if redis.call('SISMEMBER', k_tag(tag), pid) == 1 then carried = true end
    end
    if not carried then return {'E', 'pinned_unavailable', 'outside_key_tags'} end
  end
  local d = decide_child(pid, mode, cost)
  if d[1] == 'R' then
    -- A pinned task is a root task to pacing: actions-only hours, caps and gaps hold it too.
    local held = pace_reason(acct_load(pid), d[3] == 'relax' and 'r' or 'f')
    if held then return {'S', held} end
    d[5] = string.gsub(d[5], '^inherited', 'pinned')
  elseif d[1] == 'S' then
    if string.sub(d[2], 1, 6) ~= 'paced:' then
      d[2] = d[2] == 'parent_busy' and 'pinned_busy' or 'pinned_paused'
    end
  elseif d[1] == 'E' and d[2] == 'parent_unavailable' then
    d[2] = 'pinned_unavailable'
  end
  return d
end

-- Queue a task unless its client is at its limit; `fields` describe how to retry it, `weight`
-- is its key's share of staged work. FIFO within the key (`stq:<client>`); the key joins the
-- fair queue of keys (tenants.lua). `stq` holds every staged task in arrival order (counts).
local function stage(task, reason, client, limit, deadline_ms, fields, weight)
  if tonumber(redis.call('HGET', K.stc, client) or 0) >= limit then
    return {'E', 'staged_limit', limit}
  end
  redis.call('HINCRBY', K.stc, client, 1)
  local seq = redis.call('HINCRBY', K.meta, 'seq', 1)
  redis.call('ZADD', K.stq, seq, task)
  redis.call('ZADD', TN.kq(client), seq, task)
  redis.call('HINCRBY', K.meta, 'sq', 1)
  TN.join(client)
  redis.call('ZADD', K.stdl, n2s(deadline_ms), task)
  redis.call('HSET', k_stg(task), 'r', reason, 'cl', client, 'dl', n2s(deadline_ms),
             'w', weight or 1, unpack(fields))
  return {'S', reason}
end

-- A fresh request's outcome (reserve_root, reserve_child): decision `d` becomes a
-- reservation (charged to the client key's quotas, counted in its tasks in flight), a staged
-- entry (`fields` to retry it; charged `cost`, what the requested mode costs) or stays an
-- error. `req`: task, kind (root | child), client, q (quota terms or nil), lease_ms, limit
-- (staged), timeout_ms (staged), weight (fair queue). Replies carry what is left of each
-- quota limit and the thresholds crossed now (tenants.lua).
local function conclude(d, req, fields, cost)
  local client, q = req.client, req.q
  if d[1] == 'R' and q and TN.flight_full(client, q.mi) then d = {'S', 'key_in_flight_limit'} end
  if d[1] == 'R' then
    local left, alerts, extra = TN.charge(client, q, d[4])
    if q and q.mi then
      redis.call('HINCRBY', TN.kif, client, 1)
      extra[#extra + 1] = 'qi'
      extra[#extra + 1] = 1
    end
    local r = reserve(req.task, d[2], d[3], d[4], d[5], req.lease_ms, 0, req.kind, extra)
    r[8], r[9] = left, alerts
    return r
  end
  if d[1] == 'S' then
    local s = stage(req.task, d[2], client, req.limit, NOW + req.timeout_ms, fields, req.weight)
    if s[1] ~= 'S' then return s end
    local left, alerts, extra = TN.charge(client, q, cost)
    if #extra > 0 then redis.call('HSET', k_stg(req.task), unpack(extra)) end
    s[3], s[4] = left, alerts
    return s
  end
  return d
end

-- Take a task out of the queue (dispatched, cancelled or expired); false if it wasn't there.
-- `keep`: its quota charge goes on with it (dispatched); otherwise it is given back. `e`: its
-- entry when the caller has read it already.
local function unstage(task, keep, e)
  e = e or hash_table(k_stg(task))
  redis.call('ZREM', K.stq, task)
  redis.call('ZREM', K.stdl, task)
  if not e.cl then return false end
  redis.call('DEL', k_stg(task))
  if redis.call('HINCRBY', K.stc, e.cl, -1) <= 0 then redis.call('HDEL', K.stc, e.cl) end
  if e.w then
    redis.call('HINCRBY', K.meta, 'sq', -1)
    redis.call('ZREM', TN.kq(e.cl), task)
    if redis.call('EXISTS', TN.kq(e.cl)) == 0 then TN.leave(e.cl) end
  end
  if not keep then TN.refund(e, 1, tonumber(e.qf) or 0) end
  return true
end

-- Staged tasks queued by a version without per-key queues (during a rolling upgrade) are in
-- `stq` only: `stq` then holds more tasks than the per-key queues (`meta.sq`). Adopt those
-- among the oldest `limit` into their key's queue (weight 1), so they are dispatched too.
local function adopt_legacy(limit)
  if redis.call('ZCARD', K.stq) <= tonumber(redis.call('HGET', K.meta, 'sq') or 0) then return end
  local oldest = redis.call('ZRANGE', K.stq, 0, limit - 1, 'WITHSCORES')
  for i = 1, #oldest, 2 do
    local task = oldest[i]
    local e = redis.call('HMGET', k_stg(task), 'cl', 'w')
    if e[1] and not e[2] then
      redis.call('ZADD', TN.kq(e[1]), oldest[i + 1], task)
      redis.call('HSET', k_stg(task), 'w', 1)
      redis.call('HINCRBY', K.meta, 'sq', 1)
      TN.join(e[1])
    end
  end
end

local KEY_LOOK = 4 -- staged tasks looked at per key, FIFO: a blocked head doesn't stop the rest

-- Decide staged entry `e` again: {'R', ...} | {'S', ...} | {'E', ...}.
local function redecide(e)
  if e.k == 'root' then
    local ex, nex = exclusion(e.x)
    return decide_root(e.m, tonumber(e.c), ex, nex, e.t)
  elseif e.k == 'pin' then
    return decide_pinned(e.p, e.m, tonumber(e.c), e.t)
  end
  return decide_child(e.p, e.m, tonumber(e.c))
end

-- Reserve up to `limit` staged tasks that can run now, with the same rules as a fresh request,
-- key by key in order of virtual start tag (weighted fair queueing, tenants.lua): the first
-- key whose first KEY_LOOK tasks hold one that can run gets it, and its tag moves on by one
-- task of its weight. A key with nothing that can run (or at its tasks-in-flight limit) is
-- skipped and keeps its tag. At most `window` staged tasks are decided per call. Past-deadline
-- tasks are left for tick; a child (or pinned task) whose account can never take it is
-- dropped: {'D', task, bot_id, reason}.
local function dispatch(limit, default_lease, window)
  local out, taken, looked, blocked, nblocked = {}, 0, 0, {}, 0
  pace_due(PACE_BATCH)
  while taken < limit and looked < window do
    local client, tag
    local firsts = redis.call('ZRANGE', TN.stk, 0, nblocked, 'WITHSCORES')
    for i = 1, #firsts, 2 do
      if not blocked[firsts[i]] then
        client, tag = firsts[i], tonumber(firsts[i + 1])
        break
      end
    end
    if not client then break end
    local ran = false
    for _, task in ipairs(redis.call('ZRANGE', TN.kq(client), 0, KEY_LOOK - 1)) do
      if looked >= window then break end
      local e = hash_table(k_stg(task))
      if not e.k then
        redis.call('ZREM', TN.kq(client), task) -- a queue entry without its hash: drop it
        unstage(task, false)
        if redis.call('EXISTS', TN.kq(client)) == 0 then TN.leave(client) end
      elseif TN.flight_full(client, e.mi) then
        break
      elseif tonumber(e.dl) > NOW then
        looked = looked + 1
        local d = redecide(e)
        if d[1] == 'R' then
          local charged = tonumber(e.qf) or 0
          if charged > d[4] then TN.refund(e, 0, charged - d[4]) end
          local extra = {}
          if e.qk then
            extra = {'qk', e.qk, 'qd', e.qd or '', 'qm', e.qm or '', 'qf', math.min(charged, d[4])}
            if e.mi and e.mi ~= '' then
              redis.call('HINCRBY', TN.kif, client, 1)
              extra[#extra + 1] = 'qi'
              extra[#extra + 1] = 1
            end
          end
          TN.served(client, tag, e.w)
          unstage(task, true, e)
          out[#out + 1] = reserve(task, d[2], d[3], d[4], d[5], tonumber(e.ls) or default_lease,
                                  1, e.k == 'child' and 'child' or 'root', extra)
          taken = taken + 1
          ran = true
          break
        elseif d[1] == 'E' and e.k ~= 'root' then
          unstage(task, false, e)
          out[#out + 1] = {'D', task, tonumber(e.p), d[3]}
        end
      end
    end
    if not ran then
      blocked[client] = true
      nblocked = nblocked + 1
    end
  end
  return out
end

