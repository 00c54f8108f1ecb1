import { Redis, type RedisOptions } from "ioredis";

/** Where every Redis adapter connects when given no URL. */
export const DEFAULT_REDIS_URL = "redis://127.0.0.1:6379";
/** Key prefix of every Redis adapter when given none. */
export const DEFAULT_REDIS_PREFIX = "protocast:";

/**
 * A Redis client as every adapter needs it: commands never wait in ioredis' queues and are
 * never re-sent after a disconnect (a publish or a script could otherwise run twice, or after
 * its caller was told it failed); the adapters wait, bounded, for the connection themselves.
 * Connection errors are swallowed here because they reach callers as UNAVAILABLE.
 */
export function connectRedis(url: string | undefined, options: RedisOptions = {}): Redis {
  const client = new Redis(url ?? DEFAULT_REDIS_URL, {
    ...options,
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    autoResubscribe: false,
    retryStrategy: (attempt: number) => Math.min(50 * attempt, 1_000),
  });
  client.on("error", () => undefined);
  return client;
}
