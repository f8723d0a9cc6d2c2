export { createRedisEventLog, type RedisEventLogOptions, type RedisEventLogRetention } from './redisEventLog';
