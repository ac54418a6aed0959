-- How many nodes of the cluster other than this one hold a lease: a draining node hands its
-- sessions over only when one is there to take them.
-- ARGV[1] key prefix, ARGV[2] this node.
local p, me = ARGV[1], ARGV[2]
local n = 0
for _, id in ipairs(redis.call('SMEMBERS', p .. ':nodes')) do
  if id ~= me and redis.call('EXISTS', p .. ':node:{' .. id .. '}') == 1 then n = n + 1 end
end
return n
