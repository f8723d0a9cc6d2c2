/**
 * Lua scripts, so that numbering, appending and trimming (and, when reading,
 * the topic's epoch and its entries) are one atomic step. Each script touches
 * one topic's two keys, which share a hash tag.
 *
 * Topic metadata hash (`…:meta`): `epoch`, `n` (number of the newest event),
 * `ms` (time part of the newest id, so ids never go back if the clock does).
 */

/**
 * KEYS: stream, meta. ARGV: epoch to use if the topic has none, data,
 * max length ('' = none), max age in ms ('' = none), '~' or '=' (trimming precision).
 * Returns [epoch, entry id].
 */
export const PUBLISH_SCRIPT = `
if redis.replicate_commands then redis.replicate_commands() end
local epoch = redis.call('HGET', KEYS[2], 'epoch')
if not epoch then
  epoch = ARGV[1]
  redis.call('HSET', KEYS[2], 'epoch', epoch, 'n', 0, 'ms', 0)
end
local n = redis.call('HINCRBY', KEYS[2], 'n', 1)
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local last = tonumber(redis.call('HGET', KEYS[2], 'ms') or '0')
if ms < last then ms = last end
local msText = string.format('%.0f', ms)
redis.call('HSET', KEYS[2], 'ms', msText)
local id = msText .. '-' .. string.format('%d', n)
local minId = ARGV[4] ~= '' and string.format('%.0f', ms - tonumber(ARGV[4])) or nil
if ARGV[3] ~= '' then
  redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[5], ARGV[3], id, 'd', ARGV[2])
  -- Both bounds: the count in XADD, the age in a second trim.
  if minId then redis.call('XTRIM', KEYS[1], 'MINID', ARGV[5], minId) end
elseif minId then
  redis.call('XADD', KEYS[1], 'MINID', ARGV[5], minId, id, 'd', ARGV[2])
else
  redis.call('XADD', KEYS[1], id, 'd', ARGV[2])
end
return {epoch, id}
`;

/**
 * KEYS: stream, meta. ARGV: range start ('(' .. id, exclusive), max entries.
 * Returns [epoch or nil, n or nil, ms or nil, entries].
 */
export const READ_SCRIPT = `
local meta = redis.call('HMGET', KEYS[2], 'epoch', 'n', 'ms')
local entries = redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', ARGV[2])
return {meta[1], meta[2], meta[3], entries}
`;

/**
 * KEYS: meta. ARGV: epoch to use if the topic has none. Gives an unwritten
 * topic its epoch, so even its empty start has an id. Returns [epoch, n, ms].
 */
export const HEAD_SCRIPT = `
local meta = redis.call('HMGET', KEYS[1], 'epoch', 'n', 'ms')
if not meta[1] then
  redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'n', 0, 'ms', 0)
  return {ARGV[1], '0', '0'}
end
return meta
`;
