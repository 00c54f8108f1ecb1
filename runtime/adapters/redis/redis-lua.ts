import { createHash } from "node:crypto";
import { ReplyError, type Redis } from "ioredis";

/** What the Redis adapters (broker, session store, idempotency store) share to run Lua. */

export interface LuaScript {
  readonly lua: string;
  readonly sha: string;
}

export type RedisArg = string | Buffer | number;

export function luaScript(lua: string): LuaScript {
  return { lua, sha: createHash("sha1").update(lua).digest("hex") };
}

/** Redis answered that its script cache lacks the script: nothing ran. */
export function isNoScript(e: unknown): boolean {
  return e instanceof ReplyError && String((e as Error).message).startsWith("NOSCRIPT");
}

/** EVALSHA; after a Redis restart (empty script cache) the same call as EVAL, which is safe. */
export async function evalLua(redis: Redis, s: LuaScript, numKeys: number, args: readonly RedisArg[]): Promise<unknown[]> {
  try {
    return (await redis.callBuffer("EVALSHA", s.sha, numKeys, ...args)) as unknown[];
  } catch (e) {
    if (isNoScript(e)) return (await redis.callBuffer("EVAL", s.lua, numKeys, ...args)) as unknown[];
    throw e;
  }
}

/**
 * Resolves once the client is connected, or rejects with `timeout()` at the deadline. The wait
 * sits in `waiters` meanwhile, so that closing the adapter can end every wait at once.
 */
export function whenRedisReady(client: Redis, deadline: number, waiters: Set<(error: Error) => void>, timeout: () => Error): Promise<void> {
  if (client.status === "ready") return Promise.resolve();
  if (client.status === "wait") client.connect().catch(() => undefined); // a lazyConnect client of the caller's
  return new Promise((resolve, reject) => {
    const finish = (error: Error | undefined): void => {
      clearTimeout(timer);
      client.off("ready", onReady);
      waiters.delete(finish);
      if (error === undefined) resolve();
      else reject(error);
    };
    const onReady = (): void => finish(undefined);
    const timer = setTimeout(() => finish(timeout()), Math.max(0, deadline - Date.now()));
    client.on("ready", onReady);
    waiters.add(finish);
  });
}
