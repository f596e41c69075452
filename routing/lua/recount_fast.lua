-- recount_fast: the fast-time aggregates `flx` (fast seconds on accounts routing can't spend
-- them on) and `flh` (the part of the usable ones pacing holds now), indexes.lua's
-- standing, counted again from the fast selection indexes: for a pool whose totals were
-- kept before these existed, or by an older version during a rolling upgrade. The store runs
-- it at every start: O(accounts that can take fast work), once.
-- KEYS[1] pool meta hash   ARGV[1] key base   ARGV[2] now (unix ms, unused)
-- Returns {usable fast seconds, held fast seconds}.
local usable, held = 0, 0
for _, T in ipairs({IX.p, IX.b}) do
  for _, name in ipairs({'ff', 'fb', 'fp'}) do
    local rows = redis.call('ZRANGE', T[name], 0, -1, 'WITHSCORES')
    for i = 2, #rows, 2 do
      local left = tonumber(rows[i])
      usable = usable + left
      if name == 'fp' then held = held + left end
    end
  end
end
local total = tonumber(redis.call('HGET', K.agg, 'fl') or 0)
redis.call('HSET', K.agg, 'flx', total - usable, 'flh', held)
return {usable, held}
