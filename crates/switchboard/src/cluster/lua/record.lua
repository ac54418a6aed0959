-- Reads what adopting a session needs, for the node that claimed it (claim.lua).
-- ARGV[1] key prefix, ARGV[2] session, ARGV[3] the claiming node.
-- Answers {0} when the session is gone or another node claimed it since; else {1, the node
-- still logging for it ('' once done), last client seq, peer, first position kept in the log
-- of messages from other nodes, that log, the outbox log, the rooms, its user}.
local p, sid, node = ARGV[1], ARGV[2], ARGV[3]
local s = p .. ':s:{' .. sid .. '}'
local h = redis.call('HMGET', s, 'node', 'moving', 'lcs', 'peer', 'top', 'user')
if h[1] ~= node then return {0} end
local log = redis.call('LRANGE', s .. ':log', 0, -1)
local first = tonumber(h[5] or '0') - #log + 1
return {1, h[2] or '', h[3] or '0', h[4] or '', first, log,
  redis.call('LRANGE', s .. ':out', 0, -1), redis.call('SMEMBERS', s .. ':rooms'), h[6] or ''}
