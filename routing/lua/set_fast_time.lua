-- set_fast_time: set an account's fast time to the figure Midjourney reports (`/info`, or 0 on
-- GoAPI's mj_bot_no_fasthour). What tasks in flight reserved is part of that figure. Zero
-- switches the setting to relax; more restores the declared setting.
-- KEYS[1] pool meta hash   ARGV[1] key base   ARGV[2] now (unix ms)
-- ARGV[3] bot_id   ARGV[4] fast seconds   ARGV[5] reason
-- Returns {'ok'} | {'E', 'not_found'}
local old = acct_load(ARGV[3])
if not old then return {'E', 'not_found'} end
local a = copy(old)
change_fast(a, tonumber(ARGV[4]), ARGV[5])
acct_save(old, a)
return {'ok'}
