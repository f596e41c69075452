-- decide.lua: the routing rules (after selection.lua): a root task over both tiers, a child
-- task on its parent's account, a pinned task; then taking a reservation. Shared by
-- reserve_root, reserve_child and dispatch_staged (staging.lua), so a staged task is decided
-- again later with exactly the rules it was staged under.
-- "1,2,3" -> set of bot_id strings, count
local function exclusion(csv)
  local ex, n = {}, 0
  for id in string.gmatch(csv or '', '[^,]+') do
    ex[id] = true
    n = n + 1
  end
  return ex, n
end

-- Why nothing can take the task: a pool without any account says so.
local function no_capable()
  if redis.call('SCARD', K.all) == 0 then return 'pool_empty' end
  return 'no_relax_capable_account'
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

-- One tier's decision on a root task `r` (decide_root's): fast_tier's, or relax_tier's once
-- `r.decision` says how relax work was reached.
local function tier_decision(T, r)
  if r.decision then return relax_tier(T, r.ex, r.nex, r.decision, r.members) end
  return fast_tier(T, r.mode, r.cost, r.ex, r.nex, r.members)
end

-- Primaries first: a reservation there wins, and so does their staging while some primary is
-- active (they have what the task needs; backups stay idle). Backups are tried when the
-- primaries have nothing that could run it, or first when no primary is active; a routed
-- reservation on a backup says why (`backup:<why>`). `r.active` caches primary_active (read
-- only when the primaries can't take the task now: one HGET).
local function by_tier(r, why)
  local dp = tier_decision(IX.p, r)
  if dp and dp[1] == 'R' then return dp end
  if r.active == nil then r.active = primary_active(r.ex, r.members) end
  local active = r.active
  if not active then why = 'no_active_primary' end
  if active and dp then return dp end
  local db = tier_decision(IX.b, r)
  if db and db[1] == 'R' then
    if db[5] == 'routed' then db[5] = 'backup:' .. why end
    return db
  end
  if active then return db end
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
  local r = {mode = mode, cost = cost, ex = ex, nex = nex, members = members}
  if mode ~= 'relax' then
    local d = by_tier(r, 'no_fast_hours')
    if d then return d end
    r.decision = 'fallback_relax:no_fast_hours'
  else
    r.decision = 'routed'
  end
  local d = by_tier(r, 'no_relax_primary')
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
-- The reservation's fields: b bot_id, m mode, c cost, d decision, s staged, g incarnation,
-- pd the day pacing counted it in, and `extra`'s.
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
  local day = pace_take(a, kind, mode, task)
  acct_save(old, a)
  local fields = {'b', id, 'm', mode, 'c', arg(cost), 'd', decision, 's', arg(staged), 'g', a.g,
                  unpack(extra or {})}
  if day then -- the day pacing counted it in (settle gives a refused one back)
    fields[#fields + 1], fields[#fields + 2] = 'pd', n2s(day)
  end
  redis.call('HSET', k_res(task), unpack(fields))
  redis.call('ZADD', K.lease, n2s(NOW + lease_ms), task)
  return {'R', tonumber(id), mode, cost, decision, staged, task}
end

-- What an already-known task id holds (a retried call): its reservation or its staging.
local function known(task)
  if redis.call('EXISTS', k_res(task), k_stg(task)) == 0 then return nil end
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
