-- The media node of a room: the node whose SFU holds the room's media (cluster/media.rs).
-- ARGV[1] key prefix, ARGV[2] room, ARGV[3] this node, ARGV[4] how long the record lasts after
-- it was last read (ms).
-- Answers the node recorded when its lease holds (the record's life is renewed), else records
-- this node and answers it: a room whose media node died is taken by the first node to ask.
local p, room, me, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local key = p .. ':r:{' .. room .. '}:media'
local holder = redis.call('GET', key)
if holder and redis.call('EXISTS', p .. ':node:{' .. holder .. '}') == 1 then
  redis.call('PEXPIRE', key, ttl)
  return holder
end
redis.call('SET', key, me, 'PX', ttl)
return me
