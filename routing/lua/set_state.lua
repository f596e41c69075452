-- set_state: put an account in a state (operator, GoAPI notifications, upstream errors).
-- Cooling needs a deadline, after which tick makes the account active again.
-- KEYS[1] pool meta hash   ARGV[1] key base   ARGV[2] now (unix ms)
-- ARGV[3] bot_id   ARGV[4] state   ARGV[5] until (unix ms, cooling only, else "")
-- ARGV[6] reason
-- Returns {'ok'} | {'E', 'not_found'}
local old = acct_load(ARGV[3])
if not old then return {'E', 'not_found'} end
local a = copy(old)
change_state(a, ARGV[4], tonumber(ARGV[5]), ARGV[6])
acct_save(old, a)
return {'ok'}
