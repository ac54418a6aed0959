-- A node's lease, renewed by its health task, and the sweep of nodes whose lease ran out.
-- ARGV[1] key prefix, ARGV[2] this node, ARGV[3] lease in ms, ARGV[4] resume window in ms,
-- ARGV[5] sessions to take at most, ARGV[6] '1' when this node just started (what Redis still
-- lists as its sessions are of an earlier run under the same id, killed: they are let go too).
-- Renews this node's lease. Every node without one is dead: each of its sessions is let go
-- (`node` ''), to be resumed on any node within the resume window, or ended after it. Answers
-- the sessions whose window passed, claimed for this node to end (peers told `timeout`).
local p, me, lease, window, most = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local function node_key(n) return p .. ':node:{' .. n .. '}' end
local function session(s) return p .. ':s:{' .. s .. '}' end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- Lets go of the sessions of node `n`, which is gone.
local function let_go(n)
  for _, sid in ipairs(redis.call('SMEMBERS', node_key(n) .. ':s')) do
    local s = session(sid)
    if redis.call('HGET', s, 'node') == n then
      redis.call('HSET', s, 'node', '')
      redis.call('HDEL', s, 'moving')
      redis.call('ZADD', p .. ':expiry', now + window, sid)
    end
  end
  redis.call('DEL', node_key(n) .. ':s')
  redis.call('SREM', p .. ':nodes', n)
end
if ARGV[6] == '1' then let_go(me) end
redis.call('SET', node_key(me), '1', 'PX', lease)
redis.call('SADD', p .. ':nodes', me)
for _, n in ipairs(redis.call('SMEMBERS', p .. ':nodes')) do
  if redis.call('EXISTS', node_key(n)) == 0 then let_go(n) end
end
local taken = {}
for _, sid in ipairs(redis.call('ZRANGEBYSCORE', p .. ':expiry', '-inf', now, 'LIMIT', 0, most)) do
  redis.call('ZREM', p .. ':expiry', sid)
  local s = session(sid)
  if redis.call('HGET', s, 'node') == '' then
    redis.call('HSET', s, 'node', me)
    redis.call('SADD', node_key(me) .. ':s', sid)
    taken[#taken + 1] = sid
  end
end
return taken
