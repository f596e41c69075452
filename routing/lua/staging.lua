-- staging.lua: the queue of staged work (after decide.lua): staging a task, a fresh
-- request's outcome (reserved or staged), taking a task out of the queue, and dispatching
-- staged tasks again with decide.lua's rules, key by key (tenants.lua's fair queue).
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

-- Pacing holds a task past its staged timeout when nothing time-driven can free an account
-- before then: the earliest pacing change (`ix:pace`: a window's edge, a local midnight, a
-- held gap's end; `ix:gap`, `ix:gapx`: the end of a running gap not held yet) or renewal of
-- an active account, or cooling deadline of any (it is active again then), is later than
-- now + the timeout. A paused, disabled or draining account's changes free nothing: skipped,
-- among the first PAST_LOOK of each index (past them, the last one's time is a lower bound).
-- Returns the whole seconds until that instant (the client's Retry-After), else nil: stage it.
local PAST_LOOK = 16
local function first_active(key, min)
  local rows = redis.call('ZRANGEBYSCORE', key, min, '+inf', 'WITHSCORES', 'LIMIT', '0',
                          arg(PAST_LOOK))
  for i = 1, #rows, 2 do
    local a = acct_load(rows[i])
    if a and a.st == 'active' then return tonumber(rows[i + 1]) end
  end
  if #rows == 2 * PAST_LOOK then return tonumber(rows[#rows]) end
  return nil
end

local function paced_past(timeout_ms)
  local first = tonumber(redis.call('ZRANGE', K.cool, '0', '0', 'WITHSCORES')[2])
  local function earlier(t)
    if t and (first == nil or t < first) then first = t end
  end
  earlier(first_active(K.pace, '-inf'))
  earlier(first_active(K.renew, '-inf'))
  for _, key in ipairs({K.gap, K.gapx}) do -- running gaps only: ended ones wait for the tick
    earlier(first_active(key, '(' .. NOW_S))
  end
  if first == nil or first <= NOW + timeout_ms then return nil end
  return math.ceil((first - NOW) / 1000)
end

-- A fresh request's outcome (reserve_root, reserve_child): decision `d` becomes a
-- reservation (charged to the client key's quotas, counted in its tasks in flight), a staged
-- entry (`fields` to retry it; charged `cost`, what the requested mode costs) or stays an
-- error; staging that pacing holds past the staged timeout is {'E', 'paced', reason, wait}. `req`: task, kind (root | child), client, q (quota terms or nil), lease_ms, limit
-- (staged), timeout_ms (staged), weight (fair queue). Replies carry what is left of each
-- quota limit and the thresholds crossed now (tenants.lua).
local function conclude(d, req, fields, cost)
  local client, q = req.client, req.q
  if d[1] == 'S' and string.sub(d[2], 1, 6) == 'paced:' then
    local wait = paced_past(req.timeout_ms)
    if wait then return {'E', 'paced', d[2], wait} end
  end
  if d[1] == 'R' and q and TN.flight_full(client, q.mi) then d = {'S', 'key_in_flight_limit'} end
  if d[1] == 'R' then
    local left, alerts, extra = TN.charge(client, q, d[4])
    if q and q.mi then
      redis.call('HINCRBY', K.kif, client, 1)
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
    local firsts = redis.call('ZRANGE', K.stk, 0, nblocked, 'WITHSCORES')
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
              redis.call('HINCRBY', K.kif, client, 1)
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
