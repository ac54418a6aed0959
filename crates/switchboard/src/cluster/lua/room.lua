-- Reads a room: {mode, members (HGETALL of peer -> "joins\trecord"), banned users, knocks
-- (HGETALL of ticket -> record), media setting ('' for the room's policy's)}.
-- With a token, first takes the room's join lock for ARGV[4] ms; answers nil when another holds it.
-- ARGV[1] key prefix, ARGV[2] room, ARGV[3] lock token or '', ARGV[4] lock time in ms.
local r = ARGV[1] .. ':r:{' .. ARGV[2] .. '}'
if ARGV[3] ~= '' and not redis.call('SET', r .. ':lock', ARGV[3], 'NX', 'PX', ARGV[4]) then
  return nil
end
return {
  redis.call('HGET', r, 'mode') or '',
  redis.call('HGETALL', r .. ':m'),
  redis.call('SMEMBERS', r .. ':ban'),
  redis.call('HGETALL', r .. ':k'),
  redis.call('HGET', r, 'media') or '',
}
