// Redis entry ("protocast/redis"): broker, session store and idempotency store on Redis.
// Needs the optional peer dependency `ioredis`.
export { createRedisBroker, type RedisBroker, type RedisBrokerOptions } from "./adapters/redis/redis-broker.js";
export { createRedisSessionStore, type RedisSessionStoreOptions } from "./adapters/redis/redis-session-store.js";
export { createRedisIdempotencyStore, type RedisIdempotencyOptions } from "./adapters/redis/redis-idempotency.js";
