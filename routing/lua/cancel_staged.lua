-- cancel_staged: take a staged task out of the queue.
-- KEYS[1] pool meta hash   ARGV[1] key base   ARGV[2] now (unix ms)   ARGV[3] task id
-- Returns 1 if it was staged, else 0.
if unstage(ARGV[3]) then return 1 end
return 0
