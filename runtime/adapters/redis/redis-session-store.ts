import { DEFAULT_REDIS_PREFIX, connectRedis } from "./connect.js";
import { Redis, ReplyError, type RedisOptions } from "ioredis";
import type { SessionStore, SessionWrite, StoredSession } from "../../broker/session-store.js";
import { Code } from "../../errors/code.js";
import { ProtocastError } from "../../errors/protocast-error.js";
import { brokerClosed, outcomeUnknown, sleep, unavailable, withDeadline } from "../shared/broker-errors.js";
import { isNoScript, luaScript, whenRedisReady, type LuaScript, type RedisArg } from "./redis-lua.js";
import { optionKeys, rejectUnknownOptions } from "../../errors/check-options.js";

export interface RedisSessionStoreOptions {
  /** Default "redis://127.0.0.1:6379". Unused when `redis` is given. */
  readonly url?: string;
  /** A client to use instead of opening one; close() leaves it open. */
  readonly redis?: Redis;
  /** Prefix of every key of the store. Default "protocast:". */
  readonly keyPrefix?: string;
  /** How long a call waits for a lost connection before failing with UNAVAILABLE, in ms. Default 5000. */
  readonly outageWaitMs?: number;
  /** More ioredis options (TLS, password) for the client the store opens. */
  readonly redisOptions?: RedisOptions;
}

const OPTION_KEYS = optionKeys<RedisSessionStoreOptions>()("url", "redis", "keyPrefix", "outageWaitMs", "redisOptions");

/**
 * A session is two keys sharing the hash tag {<id>}, so a cluster keeps them in one slot:
 *
 *   <prefix>session:{<id>}     hash: owner, token, principal, outSeq, inSeq, subs, calls
 *   <prefix>session:{<id>}:f   sorted set of unacknowledged frames: score = seq,
 *                              member = seq as 8 bytes (big-endian) + the frame's bytes
 *
 * The seq prefix keeps equal frames of different seqs apart; a frame written again under the
 * same seq replaces the earlier one. Appending costs O(log n) per frame, trimming by ack
 * O(log n + dropped). Both keys get the same PEXPIRE on every write and claim.
 *
 * write() sends one script per session in one pipeline (one round trip per batch); each script
 * is atomic, so a claim by another node lands wholly before or after a write. Commands never
 * wait in ioredis' queues: a call waits (up to outageWaitMs) for the connection itself, and a
 * write cut off by a disconnect rejects as outcome unknown rather than being sent again.
 */
export function createRedisSessionStore(options: RedisSessionStoreOptions = {}): SessionStore {
  rejectUnknownOptions("createRedisSessionStore", options, OPTION_KEYS);
  const outageWaitMs = options.outageWaitMs ?? 5_000;
  if (!Number.isSafeInteger(outageWaitMs) || outageWaitMs < 0) {
    throw new ProtocastError(Code.InvalidArgument, `outageWaitMs must be an integer >= 0, got ${outageWaitMs}`);
  }
  const client = options.redis ?? connectRedis(options.url, options.redisOptions);
  return new RedisSessionStore(client, options.redis === undefined, options.keyPrefix ?? DEFAULT_REDIS_PREFIX, outageWaitMs);
}

/**
 * KEYS[1] hash, KEYS[2] frames. ARGV[1] owner, ARGV[2] ttl (ms), ARGV[3] three flags '0'/'1':
 * create, subs, calls; ARGV[4] token, ARGV[5] principal, ARGV[6] outSeq, ARGV[7] inSeq,
 * ARGV[8] ackSeq, ARGV[9] subs, ARGV[10] calls, then seq and member of each frame.
 * Returns 1 when stored, 0 when the session is another node's, or missing without create.
 */
const writeLua = `
local owner = redis.call('HGET', KEYS[1], 'owner')
local create = string.sub(ARGV[3], 1, 1) == '1'
if owner then
  if owner ~= ARGV[1] then return 0 end
elseif create then
  -- A new session starts empty, whatever an expired one left behind.
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'subs', '[]', 'calls', '[]')
else
  return 0
end
if create then redis.call('HSET', KEYS[1], 'token', ARGV[4], 'principal', ARGV[5]) end
redis.call('HSET', KEYS[1], 'outSeq', ARGV[6], 'inSeq', ARGV[7])
if string.sub(ARGV[3], 2, 2) == '1' then redis.call('HSET', KEYS[1], 'subs', ARGV[9]) end
if string.sub(ARGV[3], 3, 3) == '1' then redis.call('HSET', KEYS[1], 'calls', ARGV[10]) end
for i = 11, #ARGV, 2 do
  redis.call('ZREMRANGEBYSCORE', KEYS[2], ARGV[i], ARGV[i])
  redis.call('ZADD', KEYS[2], ARGV[i], ARGV[i + 1])
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[8])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
`;

/** ARGV[1] owner, ARGV[2] ttl (ms). Returns nil, or the six fields then the frames' members. */
const claimLua = `
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
redis.call('HSET', KEYS[1], 'owner', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
local out = redis.call('HMGET', KEYS[1], 'token', 'principal', 'outSeq', 'inSeq', 'subs', 'calls')
for _, m in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do out[#out + 1] = m end
return out
`;

/** ARGV[1] owner. */
const removeLua = `
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
return 1
`;

const scripts = { write: luaScript(writeLua), claim: luaScript(claimLua), remove: luaScript(removeLua) };

interface Call {
  readonly keys: readonly [string, string];
  readonly args: readonly RedisArg[];
}

class RedisSessionStore implements SessionStore {
  private readonly waiters = new Set<(error: Error) => void>();
  private closed = false;

  constructor(
    private readonly redis: Redis,
    private readonly owned: boolean,
    private readonly prefix: string,
    private readonly outageWaitMs: number,
  ) {}

  private keys(id: string): readonly [string, string] {
    const record = `${this.prefix}session:{${id}}`;
    return [record, `${record}:f`];
  }

  async write(owner: string, writes: readonly SessionWrite[], ttlMs: number): Promise<boolean[]> {
    const ttl = checkTtl(ttlMs);
    if (writes.length === 0) return [];
    const calls = writes.map((w): Call => {
      const args: RedisArg[] = [
        owner,
        ttl,
        `${w.create === undefined ? 0 : 1}${w.subs === undefined ? 0 : 1}${w.calls === undefined ? 0 : 1}`,
        w.create?.token ?? "",
        w.create?.principal ?? "",
        seqArg("outSeq", w.outSeq),
        seqArg("inSeq", w.inSeq),
        seqArg("ackSeq", w.ackSeq),
        w.subs ?? "",
        w.calls ?? "",
      ];
      for (const [seq, bytes] of w.frames) {
        const member = Buffer.allocUnsafe(8 + bytes.byteLength);
        member.writeBigUInt64BE(BigInt(seqArg("frame seq", seq)));
        member.set(bytes, 8);
        args.push(seq, member);
      }
      return { keys: this.keys(w.id), args };
    });
    const replies = await this.run("session write", scripts.write, calls, false);
    return replies.map((r) => Number(r) === 1);
  }

  async claim(sessionId: string, owner: string, ttlMs: number): Promise<StoredSession | undefined> {
    const ttl = checkTtl(ttlMs);
    const [reply] = await this.run("session claim", scripts.claim, [{ keys: this.keys(sessionId), args: [owner, ttl] }], true);
    if (reply === null || reply === undefined) return undefined;
    const r = reply as (Buffer | null)[];
    const text = (i: number): string => r[i]?.toString("utf8") ?? "";
    const frames: (readonly [number, Uint8Array])[] = [];
    for (let i = 6; i < r.length; i++) {
      const m = r[i]!;
      frames.push([Number(m.readBigUInt64BE(0)), new Uint8Array(m.subarray(8))]);
    }
    return { id: sessionId, token: text(0), principal: text(1), outSeq: Number(text(2)), inSeq: Number(text(3)), frames, subs: text(4), calls: text(5) };
  }

  async remove(owner: string, sessionIds: readonly string[]): Promise<void> {
    if (sessionIds.length === 0) return;
    // Safe to repeat: a second run finds nothing of the owner's.
    await this.run("session remove", scripts.remove, sessionIds.map((id) => ({ keys: this.keys(id), args: [owner] })), true);
  }

  /**
   * Runs one script per call in one pipeline and returns the replies in order. Calls never
   * sent are tried again until outageWaitMs is spent; calls that may have run are tried again
   * only when `repeatable`.
   */
  private async run(what: string, s: LuaScript, calls: readonly Call[], repeatable: boolean): Promise<unknown[]> {
    if (this.closed) throw brokerClosed();
    const deadline = Date.now() + this.outageWaitMs;
    for (;;) {
      try {
        if (this.closed) throw brokerClosed();
        await whenRedisReady(this.redis, deadline, this.waiters, () => unavailable(what, this.outageWaitMs));
        return await withDeadline(this.pipeline(s, calls), deadline, () => new Error(`${what}: no answer from Redis in time`));
      } catch (e) {
        if (e instanceof ReplyError) throw ProtocastError.from(e, Code.Internal);
        if (this.closed) throw brokerClosed();
        // ioredis names its offline queue when it refuses to send on a connection that is down.
        const unsent = (e instanceof Error && e.message.includes("enableOfflineQueue")) || (e instanceof ProtocastError && e.reason === "broker_unavailable");
        if ((!unsent && !repeatable) || Date.now() >= deadline) {
          if (!unsent && !repeatable) throw outcomeUnknown(what, e);
          throw e instanceof ProtocastError ? e : unavailable(what, this.outageWaitMs, e);
        }
        await sleep(10);
      }
    }
  }

  private async pipeline(s: LuaScript, calls: readonly Call[]): Promise<unknown[]> {
    const send = async (which: readonly number[], eval_: boolean): Promise<[Error | null, unknown][]> => {
      const p = this.redis.pipeline();
      for (const i of which) {
        const c = calls[i]!;
        p.callBuffer(eval_ ? "EVAL" : "EVALSHA", eval_ ? s.lua : s.sha, 2, ...c.keys, ...c.args);
      }
      const replies = ((await p.exec()) ?? []) as [Error | null, unknown][];
      if (replies.length !== which.length) throw new Error(`pipeline: ${replies.length} replies to ${which.length} commands`);
      return replies;
    };
    const all = calls.map((_, i) => i);
    const results = await send(all, false);
    // After a restart the script cache is empty; NOSCRIPT means that script did not run, so
    // those calls go again (in order) as EVAL.
    const missing = all.filter((i) => isNoScript(results[i]?.[0]));
    if (missing.length > 0) {
      const again = await send(missing, true);
      missing.forEach((i, j) => (results[i] = again[j] ?? [new Error("no reply"), null]));
    }
    const failed = results.find(([error]) => error !== null);
    if (failed !== undefined) {
      // When part of the batch ran, the rest failing is no longer a batch never sent.
      if (!(failed[0] instanceof ReplyError) && results.some(([error]) => error === null)) throw new Error("connection lost during the batch", { cause: failed[0] });
      throw failed[0];
    }
    return results.map(([, value]) => value);
  }


  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    for (const finish of Array.from(this.waiters)) finish(brokerClosed());
    if (this.owned) this.redis.disconnect();
    return Promise.resolve();
  }
}

function checkTtl(ttlMs: number): number {
  if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new ProtocastError(Code.InvalidArgument, `ttlMs must be positive, got ${ttlMs}`);
  return Math.ceil(ttlMs);
}

/** Sequence numbers travel as decimal text; Redis scores hold every safe integer exactly. */
function seqArg(name: string, n: number): string {
  if (!Number.isSafeInteger(n) || n < 0) throw new ProtocastError(Code.InvalidArgument, `${name} must be a non-negative integer, got ${n}`);
  return String(n);
}
