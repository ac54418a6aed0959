-- Commits what a node's hub changed in shared state, in order, atomically.
-- ARGV[1] key prefix, ARGV[2] the committing node's id, ARGV[3] entries kept per session log,
-- ARGV[4] the lease token the node holds, then the writes, each a code and its fields (cluster/store.rs, `encode_writes`):
--   A sid user           a session's transport is on this node
--   E sid                a session ended
--   J room peer sid record  a member joined (record: the member as JSON)
--   L room peer          a member left; an empty room is deleted
--   P sid seq in kind text  a message this node queued for its session: its outbox log
--   R sid last in hello  this node's session resumed after `last`: its outbox log
--   C sid seq active     the highest client seq accepted from a session; `active` 1 when the
--                        message counts as activity in its rooms: the store's time is noted
--                        (`act`) for their idle close (room.lua)
--   X sid                this node let go of a session another node claimed: all it logged
--                        for it is in
--   M room mode          the room's mode
--   D room media         the room's media setting, a host's `set_media`
--   B room user          a kicked user
--   F sid kind text      a message for a session: appended to its log, rung at its node
--   K room ticket record ttl  a guest knocks (record: the knock as JSON); the room's knocks
--                        expire `ttl` ms from now, with its latest
--   G room ticket        a knock ended
--   H room kind text     a message for every host of the room on another node than this one
--   U room token         the room's join lock released, if still held with this token
local p, node, cap = ARGV[1], ARGV[2], tonumber(ARGV[3])
-- Fencing: a node whose lease ran out (the others may have swept its sessions) or was lost with
-- the store's data writes nothing; -1 tells it to stop acting on its view.
if redis.call('GET', p .. ':node:{' .. node .. '}') ~= ARGV[4] then return -1 end
local function room(r) return p .. ':r:{' .. r .. '}' end
-- The store's clock in ms, read once per call.
local clock
local function now_ms()
  if not clock then
    local t = redis.call('TIME')
    clock = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  return clock
end
local function session(s) return p .. ':s:{' .. s .. '}' end
-- Appends `entry` to the list `key`, keeping its latest `cap` entries.
local function append(key, entry)
  if redis.call('RPUSH', key, entry) > cap then
    redis.call('LPOP', key)
  end
end
-- A message for session `sid`: into its log of messages from other nodes, numbered there, and
-- rung at the node holding it. A session that ended (or never reached the store) gets nothing.
local function forward(sid, kind, text)
  local s = session(sid)
  local at = redis.call('HGET', s, 'node')
  if not at then return end
  local top = redis.call('HINCRBY', s, 'top', 1)
  append(s .. ':log', kind .. '\n' .. text)
  if at ~= '' then
    redis.call('PUBLISH', p .. ':n:{' .. at .. '}', sid .. '\n' .. top .. '\n' .. kind .. '\n' .. text)
  end
end
-- Whether this node may log for session `sid`: it holds it, or another node claimed it and
-- this one has not let go yet (claim.lua). Otherwise it is fenced off.
local function holds(sid)
  local h = redis.call('HMGET', session(sid), 'node', 'moving')
  return h[1] == node or h[2] == node
end
local i = 5
while i <= #ARGV do
  local op = ARGV[i]
  if op == 'A' then
    redis.call('HSET', session(ARGV[i + 1]), 'node', node, 'user', ARGV[i + 2])
    redis.call('SADD', p .. ':node:{' .. node .. '}:s', ARGV[i + 1])
    i = i + 3
  elseif op == 'E' then
    -- A session another node adopted is that node's to end.
    if holds(ARGV[i + 1]) then
      local s = session(ARGV[i + 1])
      redis.call('SREM', p .. ':node:{' .. redis.call('HGET', s, 'node') .. '}:s', ARGV[i + 1])
      -- It no longer counts against its user's cap (admit.lua).
      local user = redis.call('HGET', s, 'user')
      if user then redis.call('SREM', p .. ':u:{' .. user .. '}', ARGV[i + 1]) end
      redis.call('DEL', s, s .. ':log', s .. ':out', s .. ':rooms')
    end
    i = i + 2
  elseif op == 'J' then
    local r = room(ARGV[i + 1])
    local n = redis.call('HINCRBY', r, 'joins', 1)
    redis.call('HSET', r .. ':m', ARGV[i + 2], n .. '\t' .. ARGV[i + 4])
    local s = session(ARGV[i + 3])
    if redis.call('EXISTS', s) == 1 then
      redis.call('HSET', s, 'peer', ARGV[i + 2])
      redis.call('SADD', s .. ':rooms', ARGV[i + 1])
    end
    i = i + 5
  elseif op == 'L' then
    local r = room(ARGV[i + 1])
    local record = redis.call('HGET', r .. ':m', ARGV[i + 2])
    if record then
      local sid = string.match(record, '"s":"([^"]+)"')
      if sid then
        redis.call('SREM', session(sid) .. ':rooms', ARGV[i + 1])
        -- What the member did while in the room still counts for it (room.lua).
        local act = tonumber(redis.call('HGET', session(sid), 'act') or '0')
        if act > tonumber(redis.call('HGET', r, 'act') or '0') then
          redis.call('HSET', r, 'act', act)
        end
      end
    end
    redis.call('HDEL', r .. ':m', ARGV[i + 2])
    if redis.call('HLEN', r .. ':m') == 0 then
      redis.call('DEL', r, r .. ':ban', r .. ':b')
    end
    i = i + 3
  elseif op == 'M' then
    redis.call('HSET', room(ARGV[i + 1]), 'mode', ARGV[i + 2])
    i = i + 3
  elseif op == 'D' then
    redis.call('HSET', room(ARGV[i + 1]), 'media', ARGV[i + 2])
    i = i + 3
  elseif op == 'B' then
    redis.call('SADD', room(ARGV[i + 1]) .. ':ban', ARGV[i + 2])
    i = i + 3
  elseif op == 'F' then
    forward(ARGV[i + 1], ARGV[i + 2], ARGV[i + 3])
    i = i + 4
  elseif op == 'P' then
    local sid = ARGV[i + 1]
    if holds(sid) then
      append(session(sid) .. ':out',
        'Q ' .. ARGV[i + 2] .. ' ' .. ARGV[i + 3] .. ' ' .. ARGV[i + 4] .. '\n' .. ARGV[i + 5])
    else
      -- Queued here after another node adopted the session: that node gets it as from any
      -- other node, after what it replayed.
      forward(sid, ARGV[i + 4], ARGV[i + 5])
    end
    i = i + 6
  elseif op == 'R' then
    if holds(ARGV[i + 1]) then
      append(session(ARGV[i + 1]) .. ':out', 'R ' .. ARGV[i + 2] .. ' ' .. ARGV[i + 3] .. '\n' .. ARGV[i + 4])
    end
    -- A node that adopted the session resumed it: a node it moved from that never let go (it
    -- did not hear of the move) is fenced off from now on.
    if redis.call('HGET', session(ARGV[i + 1]), 'node') == node then
      redis.call('HDEL', session(ARGV[i + 1]), 'moving')
    end
    i = i + 5
  elseif op == 'X' then
    local s = session(ARGV[i + 1])
    if redis.call('HGET', s, 'moving') == node then
      redis.call('HDEL', s, 'moving')
    end
    i = i + 2
  elseif op == 'C' then
    local s = session(ARGV[i + 1])
    if redis.call('EXISTS', s) == 1 then
      local fields = {}
      if tonumber(redis.call('HGET', s, 'lcs') or '0') < tonumber(ARGV[i + 2]) then
        fields[#fields + 1] = 'lcs'
        fields[#fields + 1] = ARGV[i + 2]
      end
      if ARGV[i + 3] == '1' then
        fields[#fields + 1] = 'act'
        fields[#fields + 1] = now_ms()
      end
      if #fields > 0 then redis.call('HSET', s, unpack(fields)) end
    end
    i = i + 4
  elseif op == 'K' then
    local k = room(ARGV[i + 1]) .. ':k'
    redis.call('HSET', k, ARGV[i + 2], ARGV[i + 3])
    redis.call('PEXPIRE', k, ARGV[i + 4])
    i = i + 5
  elseif op == 'G' then
    redis.call('HDEL', room(ARGV[i + 1]) .. ':k', ARGV[i + 2])
    i = i + 3
  elseif op == 'H' then
    -- The room's hosts as they are now: one who joined on any node since the hub decided hears
    -- it too. This node's own hosts got theirs from its hub.
    for _, value in ipairs(redis.call('HVALS', room(ARGV[i + 1]) .. ':m')) do
      local ok, m = pcall(cjson.decode, string.match(value, '\t(.*)$') or '')
      if ok and type(m) == 'table' and type(m.i) == 'table' and m.i.role == 'host' and m.s
          and redis.call('HGET', session(m.s), 'node') ~= node then
        forward(m.s, ARGV[i + 2], ARGV[i + 3])
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
