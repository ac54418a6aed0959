-- Reads a session's log after position ARGV[3]: {first position kept, entries from there, the
-- node holding the session ('' for none)}.
-- Entries are "kind\ntext"; positions count from 1 and the log keeps the latest ones.
-- ARGV[1] key prefix, ARGV[2] session.
local s = ARGV[1] .. ':s:{' .. ARGV[2] .. '}'
local h = redis.call('HMGET', s, 'top', 'node')
local top = tonumber(h[1] or '0')
local log = s .. ':log'
local first = top - redis.call('LLEN', log) + 1
local from = math.max(tonumber(ARGV[3]) + 1, first)
return {from, redis.call('LRANGE', log, from - first, -1), h[2] or ''}
