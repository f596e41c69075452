-- decide.lua: the second prelude (after lib.lua, before each script body): the routing rules
-- of DESIGN.md section 2 over lib.lua's indexes, taking a reservation, and staging. Shared by
-- reserve_root, reserve_child and dispatch_staged, so a staged task is decided again later
-- with exactly the rules it was staged under.

local PICK = 8 -- candidates looked at by strategy before the most-fast-time fallback

-- "1,2,3" -> set of bot_id strings, count
local function exclusion(csv)
  local ex, n = {}, 0
  for id in string.gmatch(csv or '', '[^,]+') do
    ex[id] = true
    n = n + 1
  end
  return ex, n
end

-- The best free fast account by strategy with fast time >= cost: the first PICK candidates
-- by score, then the free account with the most fast time. Never misses a feasible account.
local function pick_fast(cost, ex, nex)
  for _, id in ipairs(redis.call('ZRANGE', K.fs, 0, PICK + nex - 1)) do
    if not ex[id] and tonumber(redis.call('HGET', k_acct(id), 'fl')) >= cost then return id end
  end
  local top = redis.call('ZREVRANGE', K.ff, 0, nex, 'WITHSCORES')
  for i = 1, #top, 2 do
    if not ex[top[i]] then
      if tonumber(top[i + 1]) >= cost then return top[i] end
      return nil
    end
  end
  return nil
end

-- Most fast time on any fast-eligible account (free or busy), excluded ones skipped.
local function most_fast_time(ex, nex)
  local best = -1
  for _, key in ipairs({K.ff, K.fb}) do
    local top = redis.call('ZREVRANGE', key, 0, nex, 'WITHSCORES')
    for i = 1, #top, 2 do
      if not ex[top[i]] then
        if tonumber(top[i + 1]) > best then best = tonumber(top[i + 1]) end
        break
      end
    end
  end
  return best
end

local function pick_relax(ex, nex)
  for _, id in ipairs(redis.call('ZRANGE', K.rs, 0, nex)) do
    if not ex[id] then return id end
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

-- The same rules as decide_root, over the accounts of a tag-limited key only: exact, and
-- O(accounts carrying the key's tags) instead of O(log N) (a tag names a small group).
local function decide_root_tagged(mode, cost, ex, tags)
  local members = tagged(tags)
  local decision = 'routed'
  if mode ~= 'relax' then
    local best, best_score, has_time = nil, nil, false
    for _, id in ipairs(members) do
      if not ex[id] then
        local free = redis.call('ZSCORE', K.ff, id)
        local left = tonumber(free or redis.call('ZSCORE', K.fb, id) or -1)
        if left >= cost then
          has_time = true
          if free then
            local score = tonumber(redis.call('ZSCORE', K.fs, id))
            if best_score == nil or score < best_score then best, best_score = id, score end
          end
        end
      end
    end
    if best then return {'R', best, mode, cost, 'routed'} end
    if has_time then return {'S', 'fast_slots_busy'} end
    decision = 'fallback_relax:no_fast_hours'
  end
  local best, best_score, capable = nil, nil, false
  for _, id in ipairs(members) do
    if not ex[id] then
      local score = redis.call('ZSCORE', K.rs, id)
      if score then
        capable = true
        if best_score == nil or tonumber(score) < best_score then
          best, best_score = id, tonumber(score)
        end
      else
        local x = redis.call('HMGET', k_acct(id), 'st', 'p', 'rs')
        if x[1] == 'active' and x[2] ~= 'basic' and tonumber(x[3] or 0) > 0 then
          capable = true
        end
      end
    end
  end
  if best then return {'R', best, 'relax', 0, decision} end
  if not capable then return {'E', no_capable()} end
  return {'S', 'relax_slots_busy'}
end

-- A root task: {'R', bot_id, mode, cost, decision} | {'S', reason} | {'E', code}
-- `tags_json`: the key's allowed account tags as a JSON list, '' or '[]' for any account.
local function decide_root(mode, cost, ex, nex, tags_json)
  if tags_json ~= nil and tags_json ~= '' and tags_json ~= '[]' then
    return decide_root_tagged(mode, cost, ex, cjson.decode(tags_json))
  end
  local decision = 'routed'
  if mode ~= 'relax' then
    local id = pick_fast(cost, ex, nex)
    if id then return {'R', id, mode, cost, 'routed'} end
    if most_fast_time(ex, nex) >= cost then return {'S', 'fast_slots_busy'} end
    decision = 'fallback_relax:no_fast_hours'
  end
  local id = pick_relax(ex, nex)
  if id then return {'R', id, 'relax', 0, decision} end
  -- Staging needs an account that could take it later: excluded ones don't count.
  local capable = tonumber(redis.call('HGET', K.agg, 'rcap') or 0)
  for xid in pairs(ex) do
    local x = redis.call('HMGET', k_acct(xid), 'st', 'p', 'rs')
    if x[1] == 'active' and x[2] ~= 'basic' and tonumber(x[3]) > 0 then capable = capable - 1 end
  end
  if capable <= 0 then return {'E', no_capable()} end
  return {'S', 'relax_slots_busy'}
end

-- A child task on its parent's account: {'R', ...} | {'S', reason} | {'E', code, reason}
local function decide_child(pid, pmode, cost)
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
  if mode == 'relax' then
    if a.p == 'basic' then return {'E', 'parent_unavailable', 'no_relax_on_basic'} end
    if a.ri < a.rs then return {'R', pid, mode, c, decision} end
  elseif a.fi < a.fs then
    return {'R', pid, mode, c, decision}
  end
  return {'S', 'parent_busy'}
end

-- Take the slot and the fast time; returns {'R', bot_id, mode, cost, decision, staged, task}.
local function reserve(task, id, mode, cost, decision, lease_ms, staged)
  local old = acct_load(id)
  local a = copy(old)
  if mode == 'relax' then
    a.ri = a.ri + 1
  else
    a.fi, a.fl, a.fr = a.fi + 1, a.fl - cost, a.fr + cost
  end
  acct_save(old, a)
  redis.call('HSET', k_res(task), 'b', id, 'm', mode, 'c', cost, 'd', decision, 's', staged,
             'g', a.g)
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

-- Queue a task (FIFO) unless its client is at its limit; `fields` describe how to retry it.
local function stage(task, reason, client, limit, deadline_ms, fields)
  if tonumber(redis.call('HGET', K.stc, client) or 0) >= limit then
    return {'E', 'staged_limit', limit}
  end
  redis.call('HINCRBY', K.stc, client, 1)
  local seq = redis.call('HINCRBY', K.meta, 'seq', 1)
  redis.call('ZADD', K.stq, seq, task)
  redis.call('ZADD', K.stdl, n2s(deadline_ms), task)
  redis.call('HSET', k_stg(task), 'r', reason, 'cl', client, 'dl', n2s(deadline_ms),
             unpack(fields))
  return {'S', reason}
end

-- Take a task out of the queue (dispatched, cancelled or expired); false if it wasn't there.
local function unstage(task)
  local client = redis.call('HGET', k_stg(task), 'cl')
  redis.call('ZREM', K.stq, task)
  redis.call('ZREM', K.stdl, task)
  if not client then return false end
  redis.call('DEL', k_stg(task))
  if redis.call('HINCRBY', K.stc, client, -1) <= 0 then redis.call('HDEL', K.stc, client) end
  return true
end

-- Reserve every staged task, among the first `window` in arrival order, that can run now
-- (at most `limit` of them), with the same rules as a fresh request; each leaves the queue as
-- it is reserved. Past-deadline tasks are left for tick; tasks that can't run yet stay; a
-- child whose parent's account can never take it is dropped: {'D', task, bot_id, reason}.
local function dispatch(limit, default_lease, window)
  local out, taken = {}, 0
  for _, task in ipairs(redis.call('ZRANGE', K.stq, 0, window - 1)) do
    if taken >= limit then break end
    local e = hash_table(k_stg(task))
    if not e.k then
      unstage(task) -- a queue entry without its hash: drop it
    elseif tonumber(e.dl) > NOW then
      local d
      if e.k == 'root' then
        local ex, nex = exclusion(e.x)
        d = decide_root(e.m, tonumber(e.c), ex, nex, e.t)
      else
        d = decide_child(e.p, e.m, tonumber(e.c))
      end
      if d[1] == 'R' then
        unstage(task)
        out[#out + 1] = reserve(task, d[2], d[3], d[4], d[5], tonumber(e.ls) or default_lease, 1)
        taken = taken + 1
      elseif d[1] == 'E' and e.k == 'child' then
        unstage(task)
        out[#out + 1] = {'D', task, tonumber(e.p), d[3]}
      end
    end
  end
  return out
end

-- Script body follows.
