-- Shared head of lease.lua and leave.lua (prepended to each): letting go of a node's sessions.
-- `p` is the key prefix, `window` the resume window in ms.
local function node_key(p, n) return p .. ':node:{' .. n .. '}' end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- Lets go of the sessions of node `n` (gone, or leaving): each may be resumed on any node at
-- once, and is ended by a surviving node if not resumed within `window` ms from `now`.
local function let_go(p, n, window, now)
  for _, sid in ipairs(redis.call('SMEMBERS', node_key(p, n) .. ':s')) do
    local s = p .. ':s:{' .. sid .. '}'
    if redis.call('HGET', s, 'node') == n then
      redis.call('HSET', s, 'node', '')
      redis.call('HDEL', s, 'moving')
      redis.call('ZADD', p .. ':expiry', now + window, sid)
    end
  end
  redis.call('DEL', node_key(p, n) .. ':s')
  redis.call('SREM', p .. ':nodes', n)
end
