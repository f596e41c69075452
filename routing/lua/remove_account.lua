-- remove_account: delete an account, its indexes and history. With tasks in flight it refuses
-- unless forced; their reservations still settle later, touching nothing but themselves.
-- KEYS[1] pool meta hash   ARGV[1] key base   ARGV[2] now (unix ms)
-- ARGV[3] bot_id   ARGV[4] force (1/0)
-- Returns {'ok'} | {'E', 'not_found'} | {'E', 'busy', tasks in flight}
local old = acct_load(ARGV[3])
if not old then return {'E', 'not_found'} end
local in_flight = old.fi + old.ri
if in_flight > 0 and ARGV[4] ~= '1' then return {'E', 'busy', in_flight} end
acct_save(old, nil)
redis.call('DEL', k_hist(old.id))
return {'ok'}
