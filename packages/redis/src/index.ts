export { createRedisEventLog, type RedisEventLogOptions } from './redisEventLog';
export type { RedisEventLogRetention } from './retention';
