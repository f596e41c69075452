-- history.lua: changes worth an entry in the account's history (after accounts.lua): its
-- setting, its state and its fast time, each remembered with the time and the reason.
local HISTORY = 10 -- entries kept per account (~100 B each: keeps an account near 1 KiB)

local function remember(id, what, from, to, reason)
  local key = k_hist(id)
  redis.call('LPUSH', key, cjson.encode({at = NOW / 1000, what = what, from = from, to = to,
                                         reason = reason}))
  redis.call('LTRIM', key, 0, HISTORY - 1)
end

local function change_setting(a, to, reason)
  if a.se ~= to then
    remember(a.id, 'setting', a.se, to, reason)
    a.se = to
  end
end

-- `until_ms` only matters (and is only kept) for cooling.
local function change_state(a, to, until_ms, reason)
  if to ~= 'cooling' then until_ms = nil end
  if a.st ~= to or a.su ~= until_ms then remember(a.id, 'state', a.st, to, reason) end
  a.st, a.su = to, until_ms
  if reason == '' then a.sr = nil else a.sr = reason end
end

-- `seconds` is the account's fast time as Midjourney reports it: jobs in flight are not
-- charged yet, so what they reserved is taken out of it. None left switches the setting to
-- relax; some restores the declared setting.
local function change_fast(a, seconds, reason)
  local left = seconds - a.fr
  if left < 0 then left = 0 end
  if left ~= a.fl then
    remember(a.id, 'fast_time', a.fl, left, reason)
    a.fl = left
  end
  if seconds <= 0 then change_setting(a, 'relax', reason) else change_setting(a, a.ds, reason) end
end
