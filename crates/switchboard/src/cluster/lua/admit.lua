-- Counts a new session against its user's `max_sessions_per_user` across the cluster, in one
-- atomic step: the check and the count cannot race with another node's.
-- ARGV[1] key prefix, ARGV[2] user, ARGV[3] session, ARGV[4] the cap.
-- Answers 1 when the session is counted (now or already), 0 when the user holds the cap already.
-- The session leaves the set when it ends (write E of commit.lua).
local k = ARGV[1] .. ':u:{' .. ARGV[2] .. '}'
if redis.call('SISMEMBER', k, ARGV[3]) == 1 then return 1 end
if redis.call('SCARD', k) >= tonumber(ARGV[4]) then return 0 end
redis.call('SADD', k, ARGV[3])
return 1
