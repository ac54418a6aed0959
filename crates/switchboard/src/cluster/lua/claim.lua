-- Moves a session to the node that a client resumes it on, atomically. ARGV[1] key prefix,
-- ARGV[2] session, ARGV[3] user, ARGV[4] the claiming node, ARGV[5] the client's last seq.
-- Answers {0, ''} when there is no session to claim: gone, already this node's, or claimed by
-- another resume the client made from this one's position (two resumes racing: the first claim
-- wins, since the second comes from the same position, below the first's hello); {-1, ''} when it
-- belongs to another user; else {1, the node it was on}.
-- The node it was on hears of it on its inbox (a doorbell at position 0) and may still log
-- what it queued for the session before it heard (`moving`), until it says it is done (write
-- X in commit.lua); read.lua tells the claiming node when that is.
local p, sid, user, node, last = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local s = p .. ':s:{' .. sid .. '}'
local h = redis.call('HMGET', s, 'node', 'user', 'floor')
if not h[1] or h[1] == node then return {0, ''} end
if h[2] ~= user then return {-1, ''} end
if last < tonumber(h[3] or '0') then return {0, ''} end
redis.call('HSET', s, 'node', node, 'floor', last + 1)
redis.call('SREM', p .. ':node:{' .. h[1] .. '}:s', sid)
redis.call('SADD', p .. ':node:{' .. node .. '}:s', sid)
-- A session of a node that died no longer waits to be ended (lease.lua).
redis.call('ZREM', p .. ':expiry', sid)
if h[1] ~= '' then
  redis.call('HSET', s, 'moving', h[1])
  redis.call('PUBLISH', p .. ':n:{' .. h[1] .. '}', sid .. '\n0\nmoved\n')
else
  redis.call('HDEL', s, 'moving')
end
return {1, h[1]}
