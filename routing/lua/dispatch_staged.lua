-- dispatch_staged: reserve every staged task, among the first ARGV[5] in arrival order, that
-- can run now, with the same rules as reserve_root / reserve_child; each leaves the queue
-- as it is reserved, so every staged task is dispatched once, by whichever replica comes
-- first. Tasks past their deadline are left for tick; tasks that can't run yet stay queued;
-- a child whose parent's account can never take it (removed, disabled, relax on basic) is
-- dropped from the queue and returned as {'D', task_id, bot_id, reason} (not counted in ARGV[3]).
-- (`dispatch` in staging.lua; settle runs it too, for the slot it frees.)
-- KEYS[1] pool meta hash   ARGV[1] key base   ARGV[2] now (unix ms)
-- ARGV[3] at most this many reservations   ARGV[4] lease (ms) when the entry has none
-- ARGV[5] window: how many queued tasks to look at
-- Returns {{'R', bot_id, mode, cost, decision, staged(1), task_id} | {'D', ...}, ...}
adopt_legacy(500) -- left by a version with one global queue (a rolling upgrade)
return dispatch(tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]))
