-- dispatch_staged: reserve every staged task, among the first ARGV[5] in arrival order, that
-- can run now, with the same rules as reserve_root / reserve_child; each leaves the queue
-- as it is reserved, so every staged task is dispatched once, by whichever replica comes
-- first. Tasks past their deadline are left for tick; tasks that can't run yet stay queued;
-- a child whose parent's account can never take it (removed, disabled, relax on basic) is
-- dropped from the queue and returned as {'D', task_id, bot_id, reason} (not counted in ARGV[3]).
-- KEYS[1] pool meta hash   ARGV[1] key base   ARGV[2] now (unix ms)
-- ARGV[3] at most this many reservations   ARGV[4] lease (ms) when the entry has none
-- ARGV[5] window: how many queued tasks to look at
-- Returns {{'R', bot_id, mode, cost, decision, staged(1), task_id} | {'D', ...}, ...}
local limit, default_lease = tonumber(ARGV[3]), tonumber(ARGV[4])
local out, taken = {}, 0
for _, task in ipairs(redis.call('ZRANGE', K.stq, 0, tonumber(ARGV[5]) - 1)) do
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
