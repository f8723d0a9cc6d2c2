/*
 * The log's storage format without its driver: the Lua scripts and the stream
 * ids. `@trpc-longpoll/redis/format` loads no ioredis, so a log that reaches
 * the same database another way (`@trpc-longpoll/upstash`, over REST) shares
 * the keys, scripts and ids instead of copying them.
 */
export { HEAD_SCRIPT, PUBLISH_SCRIPT, READ_SCRIPT } from './scripts';
export { ORIGIN, formatEventId, numberOf, parseEventId, type StreamPosition } from './streamIds';
export { jsonSerializer, trimArgsOf, type RedisEventLogRetention } from './retention';
