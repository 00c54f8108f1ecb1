import { DEFAULT_REDIS_PREFIX, connectRedis } from "./connect.js";
import { randomBytes } from "node:crypto";
import { Redis, ReplyError, type RedisOptions } from "ioredis";
import type { Broker, BrokerEvent, BrokerPosition, ChannelHistoryOptions, EventMetadata, HistoryResult } from "../../broker/broker.js";
import { metadataFromText, metadataToText } from "../shared/metadata-text.js";
import { Code } from "../../errors/code.js";
import { ProtocastError } from "../../errors/protocast-error.js";
import { createChannelFeeds, type ChannelFeeds, type GapListener } from "../shared/channel-feeds.js";
import { brokerClosed, outcomeUnknown, sleep, unavailable, withDeadline } from "../shared/broker-errors.js";
import { checkBrokerOptions, type BrokerFeedOptions } from "../shared/broker-options.js";
import { epochChangeReason } from "../../broker/epoch-change.js";
import { historyScript, positionScript, publishScript } from "./redis-scripts.js";
import { evalLua, luaScript, whenRedisReady, type LuaScript, type RedisArg } from "./redis-lua.js";
import { optionKeys, rejectUnknownOptions } from "../../errors/check-options.js";

export interface RedisBrokerOptions extends BrokerFeedOptions {
  /** Default "redis://127.0.0.1:6379". */
  readonly url?: string;
  /** Prefix of every key and pub/sub channel of the broker. Default "protocast:". */
  readonly keyPrefix?: string;
  /**
   * Milliseconds after its last publish or read that a channel's epoch and offset are dropped
   * (its next use starts a new epoch); 0 keeps them. Default 0.
   */
  readonly metaTtlMs?: number;
  /** More ioredis options (TLS, password). The queueing and retry options are the broker's. */
  readonly redisOptions?: RedisOptions;
}

/** A Broker on Redis: Streams keep history, pub/sub carries the events of subscribed channels. */
export interface RedisBroker extends Broker {
  /** As Broker.subscribe; `onGap` hears of events the node will never receive. */
  subscribe(channel: string, listener: (event: BrokerEvent) => void, onGap?: GapListener): Promise<() => void>;
}

const OPTION_KEYS = optionKeys<RedisBrokerOptions>()("url", "keyPrefix", "metaTtlMs", "redisOptions", "outageWaitMs", "pageSize", "maxPending", "retryDelayMs", "onError");

/**
 * Per channel, one Lua script assigns the offset, appends to the channel's stream and
 * publishes on the channel's pub/sub channel, so offsets and history never disagree.
 * The node subscribes (on a dedicated connection) only to channels it has listeners for.
 */
export function createRedisBroker(options: RedisBrokerOptions = {}): RedisBroker {
  rejectUnknownOptions("createRedisBroker", options, OPTION_KEYS);
  const feed = checkBrokerOptions(options);
  const metaTtlMs = options.metaTtlMs ?? 0;
  if (!Number.isSafeInteger(metaTtlMs) || metaTtlMs < 0) {
    throw new ProtocastError(Code.InvalidArgument, `createRedisBroker: option metaTtlMs must be a non-negative integer, got ${metaTtlMs}`, { reason: "bad_option" });
  }
  return new RedisBrokerImpl(options.url, options.keyPrefix ?? DEFAULT_REDIS_PREFIX, metaTtlMs, feed, options.redisOptions ?? {});
}

/** Channels whose last position a node remembers for the next epoch's record. */
const maxKnown = 4_096;

const scripts = { publish: luaScript(publishScript), position: luaScript(positionScript), history: luaScript(historyScript) };

class RedisBrokerImpl implements RedisBroker {
  private readonly cmd: Redis;
  private readonly sub: Redis;
  private readonly feeds: ChannelFeeds;
  /** Pub/sub channel name -> broker channel, for the channels this node listens to. */
  private readonly names = new Map<string, string>();
  private readonly waiters = new Set<(error: Error) => void>();
  /** The last position this node saw per channel (published or received), for a new epoch to record. */
  private readonly known = new Map<string, BrokerPosition>();
  private closed = false;

  constructor(
    url: string | undefined,
    private readonly prefix: string,
    private readonly metaTtlMs: number,
    private readonly o: Required<BrokerFeedOptions>,
    redisOptions: RedisOptions,
  ) {
    // The broker waits (bounded) for "ready" itself; see connectRedis for why nothing queues.
    this.cmd = connectRedis(url, redisOptions);
    this.sub = connectRedis(url, redisOptions);
    for (const client of [this.cmd, this.sub]) {
      client.setMaxListeners(0);
      // Connection errors reach callers as UNAVAILABLE and subscribers as gap fills.
      client.on("error", () => undefined);
    }
    this.sub.on("messageBuffer", (name: Buffer, message: Buffer) => this.onMessage(name, message));
    this.sub.on("ready", () => void this.resubscribe());
    this.feeds = createChannelFeeds(
      {
        open: (channel) => this.open(channel),
        close: (channel) => this.closeUpstream(channel),
        position: (channel) => this.position(channel),
        history: (channel, since, limit) => this.history(channel, since, limit),
      },
      this.o,
    );
  }

  private key(channel: string, kind: "m" | "h" | "e"): string {
    return `${this.prefix}{${channel}}:${kind}`;
  }

  async publish(channel: string, payload: Uint8Array, options?: ChannelHistoryOptions, metadata?: EventMetadata): Promise<BrokerPosition> {
    const size = options?.historySize ?? 0;
    const ttl = options?.historyTtlMs ?? 0;
    if (!Number.isSafeInteger(size) || size < 0 || !Number.isSafeInteger(ttl) || ttl < 0) {
      throw new ProtocastError(Code.InvalidArgument, `history options must be non-negative integers, got ${size} and ${ttl}`);
    }
    const data = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    const id = randomBytes(9).toString("base64url");
    const meta = metadataToText(metadata);
    const args = (mayHaveRun: boolean): RedisArg[] => [this.key(channel, "e"), data, size, ttl, id, mayHaveRun ? "1" : "0", meta];
    // Without history there is nothing to recognise an earlier attempt by: no blind repeat.
    const reply = await this.run("publish", scripts.publish, channel, args, size > 0);
    const at = { epoch: String(reply[0]), offset: Number(reply[1]) };
    this.saw(channel, at);
    return at;
  }

  private saw(channel: string, at: BrokerPosition): void {
    const had = this.known.get(channel);
    if (had !== undefined && had.epoch === at.epoch && had.offset >= at.offset) return;
    this.known.delete(channel);
    this.known.set(channel, { epoch: at.epoch, offset: at.offset });
    if (this.known.size > maxKnown) this.known.delete(this.known.keys().next().value!);
  }

  async position(channel: string): Promise<BrokerPosition> {
    const reply = await this.run("position", scripts.position, channel, () => [], true);
    return { epoch: String(reply[0]), offset: Number(reply[1]) };
  }

  async history(channel: string, since: BrokerPosition, limit: number): Promise<HistoryResult> {
    const count = Math.max(1, Math.floor(limit));
    const reply = await this.run("history", scripts.history, channel, () => [since.epoch, since.offset, count], true);
    const epoch = String(reply[0]);
    const offset = Number(reply[1]);
    const first = Number(reply[2]);
    const size = Number(reply[3]);
    const previous = String(reply[4]) === "" ? undefined : { epoch: String(reply[4]), offset: Number(reply[5]) };
    const events: BrokerEvent[] = [];
    for (let i = 6; i + 2 < reply.length && events.length < limit; i += 3) {
      const metadata = metadataFromText(String(reply[i + 2]));
      const event = { channel, epoch, offset: Number(reply[i]), payload: new Uint8Array(reply[i + 1] as Buffer) };
      events.push(metadata === undefined ? event : { ...event, metadata });
    }
    const position = { epoch, offset };
    if (since.epoch !== epoch) {
      return { position, events, previous, gap: { fromOffset: 0, toOffset: first - 1, reason: epochChangeReason(since, previous) } };
    }
    const wanted = since.offset + 1;
    if (wanted > offset || first <= wanted) return { position, events, gap: undefined };
    return { position, events, gap: { fromOffset: wanted, toOffset: first - 1, reason: size === 0 ? "history_disabled" : "history_expired" } };
  }

  subscribe(channel: string, listener: (event: BrokerEvent) => void, onGap?: GapListener): Promise<() => void> {
    if (this.closed) return Promise.reject(brokerClosed());
    return this.feeds.subscribe(channel, listener, onGap);
  }

  /** PUBSUB NUMSUB: Redis drops a client's subscriptions the moment its connection closes. */
  async listening(channel: string): Promise<boolean | undefined> {
    if (this.closed || this.cmd.status !== "ready") return undefined;
    try {
      const reply = (await withDeadline(this.cmd.pubsub("NUMSUB", this.key(channel, "e")), Date.now() + 1_000, () => new Error("no answer"))) as unknown[];
      return Number(reply[1]) > 0;
    } catch {
      return undefined;
    }
  }

  /**
   * Runs a script, waiting up to outageWaitMs for the connection. A command cut off by a
   * disconnect may or may not have run: it is repeated only when `repeatable` (reads, and a
   * publish that looks for its own id first); a command never sent is always repeated.
   */
  private whenReady(client: Redis, deadline: number, what: string): Promise<void> {
    if (this.closed) return Promise.reject(brokerClosed());
    return whenRedisReady(client, deadline, this.waiters, () => unavailable(what, this.o.outageWaitMs));
  }

  private async run(what: string, s: LuaScript, channel: string, args: (mayHaveRun: boolean) => RedisArg[], repeatable: boolean): Promise<unknown[]> {
    if (this.closed) throw brokerClosed();
    const deadline = Date.now() + this.o.outageWaitMs;
    const known = this.known.get(channel);
    const head: RedisArg[] = [this.key(channel, "m"), this.key(channel, "h"), randomEpoch(), this.metaTtlMs, known?.epoch ?? "", known?.offset ?? 0];
    let mayHaveRun = false;
    for (;;) {
      try {
        await this.whenReady(this.cmd, deadline, what);
        const work = evalLua(this.cmd, s, 2, [...head, ...args(mayHaveRun)]);
        return await withDeadline(work, deadline, () => new Error(`${what}: no answer from Redis in time`));
      } catch (e) {
        if (e instanceof ReplyError) throw ProtocastError.from(e, Code.Internal);
        if (this.closed) throw brokerClosed();
        // ioredis names its offline queue when it refuses to send on a connection that is down.
        const unsent = (e instanceof Error && e.message.includes("enableOfflineQueue")) || (e instanceof ProtocastError && e.reason === "broker_unavailable");
        mayHaveRun ||= !unsent;
        if ((mayHaveRun && !repeatable) || Date.now() >= deadline) {
          if (mayHaveRun && what === "publish") throw outcomeUnknown(what, e);
          throw e instanceof ProtocastError ? e : unavailable(what, this.o.outageWaitMs, e);
        }
        await sleep(10);
      }
    }
  }



  private async open(channel: string): Promise<void> {
    const name = this.key(channel, "e");
    this.names.set(name, channel);
    const deadline = Date.now() + this.o.outageWaitMs;
    for (;;) {
      await this.whenReady(this.sub, deadline, "subscribe");
      try {
        await withDeadline(this.sub.subscribe(name), deadline, () => unavailable("subscribe", this.o.outageWaitMs));
        return;
      } catch (e) {
        if (this.closed) throw brokerClosed();
        if (Date.now() >= deadline) throw unavailable("subscribe", this.o.outageWaitMs, e);
        await sleep(10);
      }
    }
  }

  private closeUpstream(channel: string): void {
    const name = this.key(channel, "e");
    this.names.delete(name);
    // A connection that is down holds no subscription, and resubscribe() skips this channel.
    if (this.sub.status === "ready") this.sub.unsubscribe(name).catch(() => undefined);
  }

  /** After a reconnect: subscribe again, then let every feed catch up from history. */
  private async resubscribe(): Promise<void> {
    const names = this.feeds.channels().map((c) => this.key(c, "e"));
    if (names.length === 0) return;
    try {
      await this.sub.subscribe(...names);
    } catch (e) {
      this.o.onError(e); // the next "ready" tries again
      return;
    }
    this.feeds.resyncAll();
  }

  private onMessage(name: Buffer, message: Buffer): void {
    const channel = this.names.get(name.toString());
    if (channel === undefined) return;
    const a = message.indexOf(10);
    const b = a < 0 ? -1 : message.indexOf(10, a + 1);
    if (b < 0) {
      this.o.onError(new ProtocastError(Code.Internal, `malformed event on ${name.toString()}`));
      return;
    }
    // "<offset>" or, for an event with metadata, "<offset> <metadata length>".
    const second = message.toString("latin1", a + 1, b);
    const space = second.indexOf(" ");
    const metaLength = space < 0 ? 0 : Number(second.slice(space + 1));
    const event: BrokerEvent = {
      channel,
      epoch: message.toString("latin1", 0, a),
      offset: Number(space < 0 ? second : second.slice(0, space)),
      // A copy: the parser may reuse the buffer the message was read into.
      payload: new Uint8Array(message.subarray(b + 1 + metaLength)),
      ...(metaLength > 0 ? { metadata: metadataFromText(message.toString("utf8", b + 1, b + 1 + metaLength)) } : {}),
    };
    this.saw(channel, event);
    this.feeds.push(event);
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    this.feeds.close();
    for (const finish of Array.from(this.waiters)) finish(brokerClosed());
    this.cmd.disconnect();
    this.sub.disconnect();
    return Promise.resolve();
  }
}

function randomEpoch(): string {
  return randomBytes(6).toString("hex");
}
