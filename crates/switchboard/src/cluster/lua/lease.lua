-- A node's lease, renewed by its health task, and the sweep of nodes whose lease ran out.
-- (let_go.lua comes before this.)
-- ARGV[1] key prefix, ARGV[2] this node, ARGV[3] lease in ms, ARGV[4] resume window in ms,
-- ARGV[5] sessions to take at most, ARGV[6] '1' when this node (re)joins: it just started, or
-- comes back after it was fenced (what Redis still lists as its sessions are of an earlier run
-- or incarnation: they are let go too), ARGV[7] this node's lease token (new when it rejoins),
-- ARGV[8] '1' to take the sessions waiting whatever their window (the last node stopping).
-- Renews this node's lease; answers -1 and writes nothing when the lease held is not this
-- token (it ran out: the node is fenced, and must rejoin). Every node without a lease is dead:
-- each of its sessions is let go (`node` ''), to be resumed on any node within the resume
-- window, or ended after it. Answers the sessions whose window passed, claimed for this node to
-- end (peers told `timeout`).
local p, me, lease, window, most = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local token = ARGV[7]
local now = now_ms()
if ARGV[6] == '1' then
  let_go(p, me, window, now)
elseif redis.call('GET', node_key(p, me)) ~= token then
  return -1
end
redis.call('SET', node_key(p, me), token, 'PX', lease)
redis.call('SADD', p .. ':nodes', me)
for _, n in ipairs(redis.call('SMEMBERS', p .. ':nodes')) do
  if redis.call('EXISTS', node_key(p, n)) == 0 then let_go(p, n, window, now) end
end
local taken = {}
local upto = now
if ARGV[8] == '1' then upto = '+inf' end
for _, sid in ipairs(redis.call('ZRANGEBYSCORE', p .. ':expiry', '-inf', upto, 'LIMIT', 0, most)) do
  redis.call('ZREM', p .. ':expiry', sid)
  local s = p .. ':s:{' .. sid .. '}'
  if redis.call('HGET', s, 'node') == '' then
    redis.call('HSET', s, 'node', me)
    redis.call('SADD', node_key(p, me) .. ':s', sid)
    taken[#taken + 1] = sid
  end
end
return taken
