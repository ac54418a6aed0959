-- Reads a room: {mode, members (HGETALL of peer -> "joins\trecord"), banned users, knocks
-- (HGETALL of ticket -> record), ms since its latest activity, media setting ('' for the room's
-- policy's)}.
-- With a token, first takes the room's join lock for ARGV[4] ms; answers nil when another holds it.
-- ARGV[1] key prefix, ARGV[2] room, ARGV[3] lock token or '', ARGV[4] lock time in ms.
local r = ARGV[1] .. ':r:{' .. ARGV[2] .. '}'
if ARGV[3] ~= '' and not redis.call('SET', r .. ':lock', ARGV[3], 'NX', 'PX', ARGV[4]) then
  return nil
end
local members = redis.call('HGETALL', r .. ':m')
-- How long the room has been quiet (ms): since the latest activity of a member (commit.lua, C)
-- or of one that left (L); 0 when none is known.
local act = tonumber(redis.call('HGET', r, 'act') or '0')
for j = 2, #members, 2 do
  local sid = string.match(members[j], '"s":"([^"]+)"')
  if sid then
    act = math.max(act, tonumber(redis.call('HGET', ARGV[1] .. ':s:{' .. sid .. '}', 'act') or '0'))
  end
end
local quiet = 0
if act > 0 then
  local t = redis.call('TIME')
  quiet = math.max(0, tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - act)
end
return {
  redis.call('HGET', r, 'mode') or '',
  members,
  redis.call('SMEMBERS', r .. ':ban'),
  redis.call('HGETALL', r .. ':k'),
  quiet,
  redis.call('HGET', r, 'media') or '',
}
