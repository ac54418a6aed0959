-- Rooms' message budgets across the cluster (room_messages_per_sec): a token bucket per room,
-- refilled by the store's clock, from which each node takes what its members used since its
-- last sync. Answers, per room, the tokens left (as text; below zero is a debt the refill pays
-- first), or '' for a room the store does not hold (it has no members any more).
-- ARGV[1] key prefix, ARGV[2] tokens per second, ARGV[3] burst, then pairs: room, used.
local p, rate, burst = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local left = {}
for i = 4, #ARGV, 2 do
  local r = p .. ':r:{' .. ARGV[i] .. '}'
  if redis.call('EXISTS', r .. ':m') == 0 then
    left[#left + 1] = ''
  else
    local k = r .. ':b'
    local b = redis.call('HMGET', k, 't', 'at')
    local tokens, at = tonumber(b[1]) or burst, tonumber(b[2]) or now
    tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000) - tonumber(ARGV[i + 1])
    redis.call('HSET', k, 't', tostring(tokens), 'at', tostring(now))
    -- Untouched until it would be full again, it is as good as gone (a missing bucket is full).
    redis.call('PEXPIRE', k, math.ceil((burst - tokens) / rate * 1000) + 1000)
    left[#left + 1] = tostring(tokens)
  end
end
return left
