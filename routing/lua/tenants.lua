-- tenants.lua: a library (after history.lua, before selection.lua): what one client key may
-- spend (jobs and fast seconds per day and per month, tasks in flight) and its share of
-- staged work (weighted fair queueing by virtual start time). Its keys, all under the pool's
-- base (one cluster slot with everything else):
--   stk                  zset  client ids with staged work; score = the key's virtual start tag
--   stq:<client>         zset  one key's staged tasks, FIFO: score = arrival sequence
--   kvf                  hash  client id -> virtual finish tag of a key whose staged work ran out
--                              while it was ahead of the virtual time (no credit, no debt lost)
--   kif                  hash  client id -> tasks in flight, for keys with a max_in_flight
--   quota:<client>:<period>  hash  `j` jobs, `f` fast seconds counted in the period; `a:<limit>:<pct>`
--                              soft thresholds already raised. Expires a week after the reset.
-- `meta` field `vt`: the virtual time, the start tag of the latest dispatched task.
-- Quota terms come from the store as JSON (routing/quotas.py): `dp`/`mp` the day/month period
-- ids in the key's timezone, `dr`/`mr` their resets (unix ms), limits `jd` `jm` `fd` `fm`
-- (jobs/fast seconds per day/month) and `mi` (tasks in flight); absent means no limit.
-- Charges ride on the task's staged entry and reservation: `qk` client, `qd`/`qm` the periods
-- charged, `qf` fast seconds charged, `qi` 1 when counted in `kif`.

local TN = {
  VQ = 1048576, -- virtual time of one task at weight 1 (a weight w adds floor(VQ / w))
  GRACE = 7 * 86400000, -- a period's counters outlive its reset by this much (late refunds)
  LIMITS = { -- name, period, field, terms key
    {'jobs_day', 'd', 'j', 'jd'}, {'jobs_month', 'm', 'j', 'jm'},
    {'fast_seconds_day', 'd', 'f', 'fd'}, {'fast_seconds_month', 'm', 'f', 'fm'},
  },
  THRESHOLDS = {80, 95}, -- percent of a limit: raised once per period
}

function TN.kq(client) return BASE .. 'stq:' .. client end
function TN.qkey(client, period) return BASE .. 'quota:' .. client .. ':' .. period end

function TN.terms(json)
  if json == nil or json == '' then return nil end
  return cjson.decode(json)
end

-- {'E', 'quota_exceeded', limit, retry_after_s} if one more job of `cost` fast seconds would go
-- beyond a limit, else nil.
function TN.check(client, q, cost)
  if not q then return nil end
  for _, l in ipairs(TN.LIMITS) do
    local limit = q[l[4]]
    if limit then
      local period = l[2] == 'd' and q.dp or q.mp
      local used = tonumber(redis.call('HGET', TN.qkey(client, period), l[3]) or 0)
      if used + (l[3] == 'j' and 1 or cost) > limit then
        local reset = l[2] == 'd' and q.dr or q.mr
        return {'E', 'quota_exceeded', l[1], math.max(1, math.ceil((reset - NOW) / 1000))}
      end
    end
  end
  return nil
end

-- Count one job of `cost` fast seconds (checked before). Returns what is left of each limit
-- (flat {name, left, ...}), the thresholds crossed for the first time this period
-- ({name, pct, ...}) and the charge's fields for the entry.
function TN.charge(client, q, cost)
  if not q then return {}, {}, {} end
  local fields = {'qk', client, 'qf', cost}
  local after = {} -- period ('d'/'m') -> {j = jobs, f = fast seconds} after this charge
  for _, p in ipairs({{'d', q.dp, q.dr}, {'m', q.mp, q.mr}}) do
    if p[2] then
      local key = TN.qkey(client, p[2])
      local j = redis.call('HINCRBY', key, 'j', 1)
      local f = cost > 0 and redis.call('HINCRBY', key, 'f', cost) or nil
      -- the period's first job sets its lifetime; relative, as Redis' clock may differ from
      -- the store's (`now` is injected)
      if j == 1 then redis.call('PEXPIRE', key, math.max(1, p[3] - NOW) + TN.GRACE) end
      after[p[1]] = {j = j, f = f, key = key}
      fields[#fields + 1] = 'q' .. p[1]
      fields[#fields + 1] = p[2]
    end
  end
  local left, alerts = {}, {}
  for _, l in ipairs(TN.LIMITS) do
    local limit = q[l[4]]
    if limit then
      local period = after[l[2]]
      local now_used = period[l[3]]
      if now_used == nil then now_used = tonumber(redis.call('HGET', period.key, 'f') or 0) end
      local before = now_used - (l[3] == 'j' and 1 or cost)
      left[#left + 1] = l[1]
      left[#left + 1] = limit - now_used
      for _, pct in ipairs(TN.THRESHOLDS) do
        if before * 100 < pct * limit and now_used * 100 >= pct * limit
           and redis.call('HSETNX', period.key, 'a:' .. l[1] .. ':' .. pct, 1) == 1 then
          alerts[#alerts + 1] = l[1]
          alerts[#alerts + 1] = pct
        end
      end
    end
  end
  return left, alerts, fields
end

-- Give back `jobs` jobs and `fast` fast seconds of a charge (`e`: a hash with the q* fields),
-- to the periods it was charged in (a period already forgotten is left alone).
function TN.refund(e, jobs, fast)
  if not e.qk then return end
  for _, period in ipairs({e.qd or '', e.qm or ''}) do
    local key = TN.qkey(e.qk, period)
    if period ~= '' and redis.call('EXISTS', key) == 1 then
      if jobs > 0 then redis.call('HINCRBY', key, 'j', -jobs) end
      if fast > 0 then redis.call('HINCRBY', key, 'f', -fast) end
    end
  end
end

-- Is the key at its limit of tasks in flight (`limit` nil or '': none)?
function TN.flight_full(client, limit)
  limit = tonumber(limit)
  if not limit then return false end
  return tonumber(redis.call('HGET', K.kif, client) or 0) >= limit
end

function TN.flight_end(client)
  if redis.call('HINCRBY', K.kif, client, -1) <= 0 then redis.call('HDEL', K.kif, client) end
end

-- A key gets staged work: it joins the queue of keys at max(virtual time, its finish tag).
function TN.join(client)
  if redis.call('ZSCORE', K.stk, client) then return end
  local vt = tonumber(redis.call('HGET', K.meta, 'vt') or 0)
  local f = tonumber(redis.call('HGET', K.kvf, client) or 0)
  if f > 0 then redis.call('HDEL', K.kvf, client) end
  redis.call('ZADD', K.stk, n2s(math.max(vt, f)), client)
end

-- The key's staged work ran out: it leaves the queue of keys, keeping its finish tag while
-- that is ahead of the virtual time (an idle key earns no credit).
function TN.leave(client)
  local tag = redis.call('ZSCORE', K.stk, client)
  if not tag then return end
  redis.call('ZREM', K.stk, client)
  if tonumber(tag) > tonumber(redis.call('HGET', K.meta, 'vt') or 0) then
    redis.call('HSET', K.kvf, client, tag)
  end
end

-- The key at `tag` had one task dispatched: the virtual time moves to its start tag, the key's
-- next task starts one task of its weight later.
function TN.served(client, tag, weight)
  local vt = tonumber(redis.call('HGET', K.meta, 'vt') or 0)
  if tag > vt then redis.call('HSET', K.meta, 'vt', n2s(tag)) end
  local w = math.max(1, tonumber(weight) or 1)
  redis.call('ZADD', K.stk, 'XX', n2s(tag + math.floor(TN.VQ / w)), client)
end
