-- Commits what a node's hub changed in shared state, in order, atomically.
-- ARGV[1] key prefix, ARGV[2] the committing node's id, ARGV[3] entries kept per session log,
-- then the writes, each a code and its fields (cluster/store.rs, `encode_writes`):
--   A sid user           a session's transport is on this node
--   E sid                a session ended
--   J room peer record   a member joined (record: the member as JSON)
--   L room peer          a member left; an empty room is deleted
--   M room mode          the room's mode
--   B room user          a kicked user
--   F sid kind text      a message for a session: appended to its log, rung at its node
--   U room token         the room's join lock released, if still held with this token
local p, node, cap = ARGV[1], ARGV[2], tonumber(ARGV[3])
local function room(r) return p .. ':r:{' .. r .. '}' end
local function session(s) return p .. ':s:{' .. s .. '}' end
local i = 4
while i <= #ARGV do
  local op = ARGV[i]
  if op == 'A' then
    redis.call('HSET', session(ARGV[i + 1]), 'node', node, 'user', ARGV[i + 2])
    i = i + 3
  elseif op == 'E' then
    local s = session(ARGV[i + 1])
    redis.call('DEL', s, s .. ':log')
    i = i + 2
  elseif op == 'J' then
    local r = room(ARGV[i + 1])
    local n = redis.call('HINCRBY', r, 'joins', 1)
    redis.call('HSET', r .. ':m', ARGV[i + 2], n .. '\t' .. ARGV[i + 3])
    i = i + 4
  elseif op == 'L' then
    local r = room(ARGV[i + 1])
    redis.call('HDEL', r .. ':m', ARGV[i + 2])
    if redis.call('HLEN', r .. ':m') == 0 then
      redis.call('DEL', r, r .. ':ban')
    end
    i = i + 3
  elseif op == 'M' then
    redis.call('HSET', room(ARGV[i + 1]), 'mode', ARGV[i + 2])
    i = i + 3
  elseif op == 'B' then
    redis.call('SADD', room(ARGV[i + 1]) .. ':ban', ARGV[i + 2])
    i = i + 3
  elseif op == 'F' then
    local s = session(ARGV[i + 1])
    local at = redis.call('HGET', s, 'node')
    -- A session that ended (or never reached the store) gets nothing.
    if at then
      local top = redis.call('HINCRBY', s, 'top', 1)
      local log = s .. ':log'
      if redis.call('RPUSH', log, ARGV[i + 2] .. '\n' .. ARGV[i + 3]) > cap then
        redis.call('LPOP', log)
      end
      if at ~= '' then
        redis.call('PUBLISH', p .. ':n:{' .. at .. '}',
          ARGV[i + 1] .. '\n' .. top .. '\n' .. ARGV[i + 2] .. '\n' .. ARGV[i + 3])
      end
    end
    i = i + 4
  elseif op == 'U' then
    local k = room(ARGV[i + 1]) .. ':lock'
    if redis.call('GET', k) == ARGV[i + 2] then
      redis.call('DEL', k)
    end
    i = i + 3
  else
    return redis.error_reply('commit.lua: unknown write ' .. tostring(op))
  end
end
return 1
