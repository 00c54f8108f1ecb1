import { DEFAULT_REDIS_PREFIX, connectRedis } from "./connect.js";
import { randomBytes } from "node:crypto";
import { Redis, ReplyError, type RedisOptions } from "ioredis";
import type { BeginOptions, IdempotencyStore, StoreBeginResult } from "../../broker/idempotency-store.js";
import { Code } from "../../errors/code.js";
import { ProtocastError } from "../../errors/protocast-error.js";
import type { Outcome, RequestFingerprint } from "../../session/idempotency-window.js";
import { brokerClosed, sleep, unavailable, withDeadline } from "../shared/broker-errors.js";
import {
  checkInteger,
  checkStoreOptions,
  decodeOutcome,
  encodeOutcome,
  pollBegin,
  runToken,
  stringBytes,
  type Attempt,
  type SharedStoreOptions,
} from "../shared/idempotency-shared.js";
import { evalLua, luaScript, whenRedisReady, type LuaScript, type RedisArg } from "./redis-lua.js";
import { optionKeys, rejectUnknownOptions } from "../../errors/check-options.js";

export interface RedisIdempotencyOptions extends SharedStoreOptions {
  /** Default "redis://127.0.0.1:6379". Unused when `redis` is given. */
  readonly url?: string;
  /** A client to use instead of opening one; close() leaves it open. */
  readonly redis?: Redis;
  /** Prefix of every key of the store. Default "protocast:". */
  readonly keyPrefix?: string;
  /**
   * Completed records kept per principal. Each complete() adds its key to the principal's
   * sorted set by completion time and, in the same script, deletes the oldest completed
   * records past this number; running and forgotten records do not count. Default 10 000.
   */
  readonly maxKeysPerPrincipal?: number;
  /** More ioredis options (TLS, password) for the client the store opens. */
  readonly redisOptions?: RedisOptions;
}

const OPTION_KEYS = optionKeys<RedisIdempotencyOptions>()("url", "redis", "keyPrefix", "maxKeysPerPrincipal", "redisOptions", "ttlMs", "pollMs", "outageWaitMs");

/**
 * An IdempotencyStore shared by the nodes through Redis: one Lua script per operation, so
 * that of any number of nodes beginning a key at once exactly one runs it. A duplicate of a
 * running request re-reads the record every pollMs; once the runner's lease has ended (by the
 * Redis clock) the next begin() takes the key over, and the old runner's complete() or forget()
 * is ignored. A duplicate that was waiting when the request is forgotten gets forget()'s
 * transient outcome, as with the embedded store; one that first reads the key after the
 * forget() is a new request and runs.
 *
 * Record of (principal, key): a hash at `<prefix>idem:{pP}:K`, P and K the base64url of the
 * principal's and the key's bytes. The braces make pP the hash tag, so a cluster keeps all of
 * a principal's keys, and its sorted set `<prefix>idem:{pP}` of completions, in one slot.
 *
 *   s  state: r running, d done, f forgotten
 *   t  token of the begin() that runs it; complete() and forget() only touch their own run
 *   g, h  target and digest of the request
 *   e  lease end, Redis server time in ms (r only)
 *   o  the outcome's bytes (d, f)
 *
 * Every script is safe to repeat (a begin finding its own token is the runner), so a command
 * whose answer was lost to a disconnect is simply sent again.
 *
 * A node killed mid-request would hold its keys to the end of their leases (the call's deadline
 * plus 5 s). So that its clients' retries need not wait that long, each store keeps a second
 * connection subscribed to `<prefix>idem:live:<holder>` and names that holder in its run
 * tokens; a duplicate that finds no subscriber there (PUBSUB NUMSUB: Redis drops a client's
 * subscriptions as soon as its connection closes) takes the key over at once. Expiry: a running record
 * disappears ttlMs after its lease ends, a completed one ttlMs after completion, a forgotten
 * one after max(1 s, 40 polls): long enough for the duplicates that waited to read it.
 */
export function createRedisIdempotencyStore(options: RedisIdempotencyOptions = {}): IdempotencyStore {
  rejectUnknownOptions("createRedisIdempotencyStore", options, OPTION_KEYS);
  const o = checkStoreOptions(options);
  const maxKeys = options.maxKeysPerPrincipal ?? 10_000;
  checkInteger("maxKeysPerPrincipal", maxKeys, 1);
  // The store waits (bounded) for the connection and repeats its scripts itself.
  const client = options.redis ?? connectRedis(options.url, options.redisOptions);
  return new RedisIdempotencyStore(client, options.redis === undefined, options.keyPrefix ?? DEFAULT_REDIS_PREFIX, o, maxKeys);
}

const beginLua = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local r = redis.call('HMGET', KEYS[1], 's', 't', 'g', 'h', 'e', 'o')
local lease = tonumber(ARGV[3])
local life = lease + tonumber(ARGV[6])
if r[1] == 'f' and r[2] == ARGV[5] then return {'done', r[6]} end
if not r[1] or r[1] == 'f' then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 's', 'r', 't', ARGV[4], 'g', ARGV[1], 'h', ARGV[2], 'e', now + lease)
  redis.call('PEXPIRE', KEYS[1], life)
  return {'run'}
end
if r[3] ~= ARGV[1] or r[4] ~= ARGV[2] then return {'conflict'} end
if r[1] == 'd' then return {'done', r[6]} end
if r[2] == ARGV[4] then return {'run'} end
if tonumber(r[5]) <= now or (ARGV[7] ~= '' and r[2] == ARGV[7]) then
  redis.call('HSET', KEYS[1], 't', ARGV[4], 'e', now + lease)
  redis.call('PEXPIRE', KEYS[1], life)
  return {'run'}
end
return {'wait', r[2]}
`;

// The records dropped for maxKeysPerPrincipal are named from KEYS[2] in the script: they
// share its hash tag, so they are in the script's slot.
const completeLua = `
local r = redis.call('HMGET', KEYS[1], 's', 't')
if r[1] ~= 'r' or r[2] ~= ARGV[1] then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 's', 'd', 'o', ARGV[2])
redis.call('HDEL', KEYS[1], 'e')
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('ZADD', KEYS[2], now, ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - ttl)
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4])
if over > 0 then
  for _, m in ipairs(redis.call('ZRANGE', KEYS[2], 0, over - 1)) do
    local k = KEYS[2] .. ':' .. m
    if redis.call('HGET', k, 's') == 'd' then redis.call('DEL', k) end
  end
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, over - 1)
end
redis.call('PEXPIRE', KEYS[2], ttl)
return 1
`;

// An empty outcome releases the key (a begin aborted after it registered): the record goes.
const forgetLua = `
local r = redis.call('HMGET', KEYS[1], 's', 't')
if r[1] ~= 'r' or r[2] ~= ARGV[1] then return 0 end
if ARGV[2] == '' then return redis.call('DEL', KEYS[1]) end
redis.call('HSET', KEYS[1], 's', 'f', 'o', ARGV[2])
redis.call('HDEL', KEYS[1], 'e')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`;

const scripts = { begin: luaScript(beginLua), complete: luaScript(completeLua), forget: luaScript(forgetLua) };

class RedisIdempotencyStore implements IdempotencyStore {
  /**
   * Record key -> token of the request this store runs under it. Two begin()s on one store that
   * both got "run" for a key (the second after the first's lease ended) share the later token.
   */
  private readonly running = new Map<string, string>();
  private readonly waiters = new Set<(error: Error) => void>();
  private readonly forgetHoldMs: number;
  /** This store's name in run tokens, and the connection that shows it alive. */
  private readonly holder = randomBytes(9).toString("base64url");
  private readonly live: Redis;
  private liveUp = false;
  private closed = false;

  constructor(
    private readonly redis: Redis,
    private readonly owned: boolean,
    private readonly prefix: string,
    private readonly o: Required<SharedStoreOptions>,
    private readonly maxKeys: number,
  ) {
    this.forgetHoldMs = Math.max(1_000, 40 * o.pollMs);
    this.live = redis.duplicate({ enableOfflineQueue: false, autoResubscribe: false });
    this.live.on("error", () => undefined);
    this.live.on("close", () => (this.liveUp = false));
    this.live.on("ready", () => {
      this.live.subscribe(this.liveChannel(this.holder)).then(
        () => (this.liveUp = !this.closed),
        () => undefined, // the next "ready" tries again; meanwhile tokens name no holder
      );
    });
  }

  private liveChannel(holder: string): string {
    return `${this.prefix}idem:live:${holder}`;
  }

  /** True when the store that holds a run is gone: nobody listens on its channel any more. */
  private async holderGone(holder: string): Promise<boolean> {
    if (holder === this.holder || this.redis.status !== "ready") return false;
    const reply = (await withDeadline(this.redis.pubsub("NUMSUB", this.liveChannel(holder)), Date.now() + 1_000, () => new Error("no answer"))) as unknown[];
    return Number(reply[1]) === 0;
  }

  private keys(principal: string, key: string): { record: string; set: string; member: string } {
    // "p" keeps the tag non-empty: Redis hashes a key with an empty "{}" whole.
    const set = `${this.prefix}idem:{p${stringBytes(principal).toString("base64url")}}`;
    const member = stringBytes(key).toString("base64url");
    return { record: `${set}:${member}`, set, member };
  }

  begin(principal: string, key: string, request: RequestFingerprint, options: BeginOptions): Promise<StoreBeginResult> {
    const { record } = this.keys(principal, key);
    // Named only while others can see this store alive; otherwise its runs wait out their leases.
    const token = runToken(this.liveUp ? this.holder : undefined);
    const leaseMs = Math.max(1, Math.ceil(options.leaseMs));
    const attempt = async (seen: string, takeOver: string): Promise<Attempt> => {
      const reply = await this.exec(scripts.begin, [record], [request.target, String(request.digest), leaseMs, token, seen, this.o.ttlMs, takeOver]);
      switch (String(reply[0])) {
        case "run":
          this.running.set(record, token);
          return { kind: "run" };
        case "done":
          return { kind: "done", outcome: decodeOutcome(reply[1] as Buffer) };
        case "conflict":
          return { kind: "conflict" };
        default:
          return { kind: "wait", token: String(reply[1]) };
      }
    };
    const release = (): Promise<void> => this.finish(principal, key, undefined);
    return pollBegin(attempt, release, this.o.pollMs, options.signal, (holder) => this.holderGone(holder));
  }

  async complete(principal: string, key: string, outcome: Outcome): Promise<void> {
    const { record, set, member } = this.keys(principal, key);
    const token = this.running.get(record);
    if (token === undefined) return;
    this.running.delete(record);
    await this.exec(scripts.complete, [record, set], [token, Buffer.from(encodeOutcome(outcome)), this.o.ttlMs, this.maxKeys, member]);
  }

  forget(principal: string, key: string, outcome: Outcome): Promise<void> {
    return this.finish(principal, key, outcome);
  }

  /** forget(), or with no outcome a release: the record is deleted. */
  private async finish(principal: string, key: string, outcome: Outcome | undefined): Promise<void> {
    const { record } = this.keys(principal, key);
    const token = this.running.get(record);
    if (token === undefined) return;
    this.running.delete(record);
    const bytes = outcome === undefined ? "" : Buffer.from(encodeOutcome(outcome));
    await this.exec(scripts.forget, [record], [token, bytes, this.forgetHoldMs]);
  }

  /** Runs a script, repeating it (all are safe to repeat) until outageWaitMs is spent. */
  private async exec(s: LuaScript, keys: readonly string[], args: readonly RedisArg[]): Promise<unknown[]> {
    const deadline = Date.now() + this.o.outageWaitMs;
    for (;;) {
      if (this.closed) throw brokerClosed();
      try {
        await whenRedisReady(this.redis, deadline, this.waiters, () => unavailable("idempotency store", this.o.outageWaitMs));
        return await withDeadline(evalLua(this.redis, s, keys.length, [...keys, ...args]), deadline, () => new Error("no answer from Redis in time"));
      } catch (e) {
        if (e instanceof ReplyError) throw ProtocastError.from(e, Code.Internal);
        if (this.closed) throw brokerClosed();
        if (Date.now() >= deadline) throw e instanceof ProtocastError ? e : unavailable("idempotency store", this.o.outageWaitMs, e);
        await sleep(10);
      }
    }
  }



  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    for (const finish of Array.from(this.waiters)) finish(brokerClosed());
    this.live.disconnect();
    if (this.owned) this.redis.disconnect();
    return Promise.resolve();
  }
}
