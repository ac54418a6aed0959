-- A node stops (SIGTERM): the sessions still listed under it are let go, so their clients,
-- told to resume elsewhere, are taken at once by whichever node they come to, and its lease goes.
-- (let_go.lua comes before this.)
-- ARGV[1] key prefix, ARGV[2] this node, ARGV[3] resume window in ms, ARGV[4] its lease token.
-- A node whose lease is not this token was fenced and swept: nothing of it is left to let go.
local p, me, window = ARGV[1], ARGV[2], tonumber(ARGV[3])
if redis.call('GET', node_key(p, me)) ~= ARGV[4] then return 0 end
let_go(p, me, window, now_ms())
redis.call('DEL', node_key(p, me))
return 1
