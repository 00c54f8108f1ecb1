import { connectNats, readyOrClosed } from "./connect.js";
import { randomBytes } from "node:crypto";
import { headers, nanos, type Msg, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { DiscardPolicy, JetStreamApiError, StorageType, jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import type { Broker, BrokerEvent, BrokerPosition, ChannelHistoryOptions, EventMetadata, HistoryResult } from "../../broker/broker.js";
import { metadataFromText, metadataToText } from "../shared/metadata-text.js";
import { Code } from "../../errors/code.js";
import { ProtocastError } from "../../errors/protocast-error.js";
import { brokerClosed, outcomeUnknown, sleep, unavailable, withDeadline } from "../shared/broker-errors.js";
import { checkBrokerOptions, type BrokerFeedOptions } from "../shared/broker-options.js";
import { createChannelFeeds, type ChannelFeeds, type GapListener } from "../shared/channel-feeds.js";
import { decodeBatch, encodeBatch } from "./nats-batch.js";
import { firstOffset, readHistory, type SeqHint, type StoredEvent } from "./nats-history.js";
import { createStreamReads, natsHeaders as H, type StreamReads } from "./nats-stream.js";
import { channelSubjects } from "./nats-subjects.js";
import { optionKeys, rejectUnknownOptions } from "../../errors/check-options.js";

export interface NatsBrokerOptions extends BrokerFeedOptions {
  /** Default "127.0.0.1:4222". Unused when `connection` is given. */
  readonly servers?: string | string[];
  /** A connection to use instead of opening one; close() leaves it open. */
  readonly connection?: NatsConnection;
  /** The JetStream stream holding every channel's history. Default "PROTOCAST". */
  readonly stream?: string;
  /** First token of every subject of the broker. Default "protocast". */
  readonly subjectPrefix?: string;
  /**
   * Messages the stream keeps per channel (max_msgs_per_subject). A message holds one event or
   * more, so a channel's history keeps at least this many events: a historySize up to it is
   * always honoured. Default 1000.
   */
  readonly maxHistorySize?: number;
  /** Stream max_age in ms (0: none). A channel idle for longer starts a new epoch. Default 0. */
  readonly maxHistoryAgeMs?: number;
  /** Default "file": history survives a NATS restart. */
  readonly storage?: "file" | "memory";
  /** How long the stream recognises a retried publish by its Nats-Msg-Id. Default 60000. */
  readonly duplicateWindowMs?: number;
  /**
   * Fan-out of two publishers can arrive out of order; a node waits this long for a missing
   * offset before reading it from history. Default 20.
   */
  readonly reorderWaitMs?: number;
  /**
   * Events one stored message holds at most. The publishes of a channel made while its previous
   * message is in flight go out together as one message; 1 stores every event alone. Default 256.
   */
  readonly maxBatchEvents?: number;
  /**
   * Body bytes of a message of several events (each event and 4 bytes of framing), capped at
   * half the server's max_payload. An event larger than this goes alone. Default 262144 (256 KiB).
   */
  readonly maxBatchBytes?: number;
}

/** Defaults of the options the NATS broker adds to those of every networked broker. */
export const defaultNatsBrokerOptions = {
  maxHistorySize: 1_000,
  maxHistoryAgeMs: 0,
  duplicateWindowMs: 60_000,
  reorderWaitMs: 20,
  maxBatchEvents: 256,
  maxBatchBytes: 256 * 1_024,
} as const;

/** A Broker on NATS: JetStream assigns offsets and keeps history, core subjects fan out. */
export interface NatsBroker extends Broker {
  /** As Broker.subscribe; `onGap` hears of events the node will never receive. */
  subscribe(channel: string, listener: (event: BrokerEvent) => void, onGap?: GapListener): Promise<() => void>;
}

const OPTION_KEYS = optionKeys<NatsBrokerOptions>()("servers", "connection", "stream", "subjectPrefix", "maxHistorySize", "maxHistoryAgeMs", "storage", "duplicateWindowMs", "reorderWaitMs", "maxBatchEvents", "maxBatchBytes", "outageWaitMs", "pageSize", "maxPending", "retryDelayMs", "onError");

/**
 * Offsets are made contiguous per channel by optimistic concurrency: a publish states the
 * stream sequence of the channel's last message (Nats-Expected-Last-Subject-Sequence) and
 * carries offset and epoch in headers; when another node got there first, it re-reads the
 * last message and tries again. A Nats-Msg-Id per message makes its retries safe. Publishes
 * of a channel made while its previous message is in flight share the next message, one offset
 * each. Once stored, the publisher sends the message on the channel's core subject, which only
 * subscribed nodes hear.
 */
export async function createNatsBroker(options: NatsBrokerOptions = {}): Promise<NatsBroker> {
  rejectUnknownOptions("createNatsBroker", options, OPTION_KEYS);
  const feed = checkBrokerOptions(options);
  const d = defaultNatsBrokerOptions;
  const maxHistorySize = options.maxHistorySize ?? d.maxHistorySize;
  const maxHistoryAgeMs = options.maxHistoryAgeMs ?? d.maxHistoryAgeMs;
  const duplicateWindowMs = options.duplicateWindowMs ?? d.duplicateWindowMs;
  const reorderWaitMs = options.reorderWaitMs ?? d.reorderWaitMs;
  const maxBatchEvents = options.maxBatchEvents ?? d.maxBatchEvents;
  const maxBatchBytes = options.maxBatchBytes ?? d.maxBatchBytes;
  for (const [name, value, min] of [
    ["maxHistorySize", maxHistorySize, 1],
    ["maxHistoryAgeMs", maxHistoryAgeMs, 0],
    ["duplicateWindowMs", duplicateWindowMs, 1_000],
    ["reorderWaitMs", reorderWaitMs, 0],
    ["maxBatchEvents", maxBatchEvents, 1],
    ["maxBatchBytes", maxBatchBytes, 1],
  ] as const) {
    if (!Number.isSafeInteger(value) || value < min) {
      throw new ProtocastError(Code.InvalidArgument, `createNatsBroker: option ${name} must be an integer >= ${min}, got ${value}`, { reason: "bad_option" });
    }
  }
  const stream = options.stream ?? "PROTOCAST";
  const prefix = options.subjectPrefix ?? "protocast";
  const owned = options.connection === undefined;
  const nc =
    options.connection ??
    (await connectNats(options.servers, feed.outageWaitMs));
  // Each request gives up after this; retrying() repeats it until outageWaitMs is spent.
  const timeout = Math.max(100, Math.min(2_000, feed.outageWaitMs));
  const jsm = await jetstreamManager(nc, { timeout });
  const js = jetstream(nc, { timeout });
  const broker = new NatsBrokerImpl(nc, owned, jsm, js, createStreamReads(jsm, js, stream), prefix, feed, reorderWaitMs, { maxEvents: maxBatchEvents, maxBytes: maxBatchBytes }, {
    name: stream,
    subjects: [`${prefix}.h.>`],
    storage: options.storage === "memory" ? StorageType.Memory : StorageType.File,
    max_msgs_per_subject: maxHistorySize,
    max_age: nanos(maxHistoryAgeMs),
    discard: DiscardPolicy.Old,
    allow_direct: true,
    duplicate_window: nanos(duplicateWindowMs),
  });
  return readyOrClosed(broker, () => broker.ensureStream());
}

/** Channels whose last message a publisher remembers, to skip a read before each publish. */
const maxTails = 4_096;
/** Recent (offset, sequence) pairs kept per subscribed channel to start history reads near. */
const maxHints = 16;

type StreamConfig = Parameters<JetStreamManager["streams"]["add"]>[0];

class NatsBrokerImpl implements NatsBroker {
  private readonly feeds: ChannelFeeds;
  private readonly subs = new Map<string, Subscription>();
  private readonly tails = new Map<string, StoredEvent>();
  /** The last position this node saw per channel, for the next epoch to record. */
  private readonly known = new Map<string, BrokerPosition>();
  private readonly hints = new Map<string, SeqHint[]>();
  /** Publishes waiting per channel, while the channel's previous message is in flight. */
  private readonly queues = new Map<string, Queued[]>();
  /** Cancels of the attempts in flight, which a reconnect ends. */
  private readonly inFlight = new Set<() => void>();
  private ensuring: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly owned: boolean,
    private readonly jsm: JetStreamManager,
    private readonly js: JetStreamClient,
    private readonly reads: StreamReads,
    private readonly prefix: string,
    private readonly o: Required<BrokerFeedOptions>,
    reorderWaitMs: number,
    private readonly batchLimits: BatchLimits,
    private readonly config: StreamConfig,
  ) {
    this.feeds = createChannelFeeds(
      {
        open: (channel) => this.open(channel),
        close: (channel) => this.closeUpstream(channel),
        position: (channel) => this.position(channel),
        history: (channel, since, limit) => this.history(channel, since, limit),
      },
      { ...this.o, gapGraceMs: reorderWaitMs },
    );
    void this.watchStatus();
  }

  /** Creates the stream, or accepts the one that exists (whatever its limits). */
  ensureStream(): Promise<void> {
    this.ensuring ??= this.jsm.streams
      .add(this.config)
      .then(() => undefined)
      .catch((e: unknown) => {
        if (e instanceof JetStreamApiError && e.code === 10058) return; // exists with other limits
        throw e;
      })
      .finally(() => (this.ensuring = undefined));
    return this.ensuring;
  }

  publish(channel: string, payload: Uint8Array, options?: ChannelHistoryOptions, metadata?: EventMetadata): Promise<BrokerPosition> {
    if (this.closed) return Promise.reject(brokerClosed());
    const size = options?.historySize ?? 0;
    const ttl = options?.historyTtlMs ?? 0;
    if (!Number.isSafeInteger(size) || size < 0 || !Number.isSafeInteger(ttl) || ttl < 0) {
      return Promise.reject(new ProtocastError(Code.InvalidArgument, `history options must be non-negative integers, got ${size} and ${ttl}`));
    }
    return new Promise<BrokerPosition>((resolve, reject) => {
      const item: Queued = { payload, meta: metadataToText(metadata), size, ttl, deadline: Date.now() + this.o.outageWaitMs, resolve, reject };
      const queue = this.queues.get(channel);
      if (queue !== undefined) {
        queue.push(item);
        return;
      }
      const fresh = [item];
      this.queues.set(channel, fresh);
      // Publishes of the same turn go out together.
      queueMicrotask(() => void this.drain(channel, fresh));
    });
  }

  /**
   * One message in flight per channel and node, as each needs the stream sequence the previous
   * one got; what is published meanwhile waits and goes out as one message of several events.
   */
  private async drain(channel: string, queue: Queued[]): Promise<void> {
    while (queue.length > 0) {
      const batch = takeBatch(queue, this.batchLimits.maxEvents, this.maxBatchBytes);
      try {
        const at = await this.publishNow(channel, batch);
        const first = firstOffset(at);
        for (let i = 0; i < batch.length; i++) batch[i]!.resolve({ epoch: at.epoch, offset: first + i });
      } catch (e) {
        for (const item of batch) item.reject(e);
      }
    }
    this.queues.delete(channel);
  }

  /**
   * Body bytes a message of several events may have: the option, but at most half the server's
   * max_payload, so that a message of several events stays well clear of it, headers included.
   */
  private get maxBatchBytes(): number {
    return Math.min(this.batchLimits.maxBytes, Math.floor((this.nc.info?.max_payload ?? 1_048_576) / 2));
  }

  private async publishNow(channel: string, batch: readonly Queued[]): Promise<StoredEvent> {
    const subjects = channelSubjects(this.prefix, channel);
    const msgID = randomBytes(12).toString("base64url");
    const { size, ttl, deadline, meta } = batch[0]!;
    const count = batch.length;
    const body = count === 1 ? batch[0]!.payload : encodeBatch(batch.map((item) => item.payload));
    let tail = this.tails.get(channel);
    let known = tail !== undefined;
    return this.retrying("publish", deadline, async () => {
      if (!known) {
        tail = (await this.reads.last(subjects.history)) ?? undefined;
        known = true;
      }
      const epoch = tail?.epoch ?? randomEpoch();
      const offset = (tail?.offset ?? 0) + count;
      const origin = this.origin(channel, tail);
      const h = headers();
      h.set(H.epoch, epoch);
      h.set(H.offset, String(offset));
      if (count > 1) h.set(H.count, String(count));
      h.set(H.history, `${size} ${ttl}`);
      h.set(H.prev, String(tail?.seq ?? 0));
      if (origin !== undefined) h.set(H.origin, `${origin.epoch} ${origin.offset}`);
      if (meta !== "") h.set(H.metadata, meta);
      try {
        const ack = await this.js.publish(subjects.history, body, {
          msgID,
          headers: h,
          expect: { lastSubjectSequence: tail?.seq ?? 0 },
          timeout: Math.max(1, Math.min(2_000, deadline - Date.now())),
        });
        // A duplicate is this publish stored by an earlier attempt whose answer was lost.
        const stored = ack.duplicate ? ((await this.reads.at(ack.seq)) ?? undefined) : undefined;
        const at = stored ?? { seq: ack.seq, epoch, offset, count, time: Date.now(), historySize: size, historyTtlMs: ttl, prevSeq: tail?.seq ?? 0, origin, payload: body };
        this.remember(channel, at);
        const fan = headers();
        fan.set(H.epoch, at.epoch);
        fan.set(H.offset, String(at.offset));
        if (at.count > 1) fan.set(H.count, String(at.count));
        fan.set(H.seq, String(at.seq));
        if (meta !== "") fan.set(H.metadata, meta);
        this.nc.publish(subjects.events, at.payload, { headers: fan });
        return at;
      } catch (e) {
        if (e instanceof JetStreamApiError && e.code === 10071) {
          // Another node published first: learn the new last message and go again.
          known = false;
          throw new Conflict();
        }
        throw e;
      }
    }, true);
  }

  async position(channel: string): Promise<BrokerPosition> {
    const last = await this.lastOrCreate(channel);
    return { epoch: last.epoch, offset: last.offset };
  }

  async history(channel: string, since: BrokerPosition, limit: number): Promise<HistoryResult> {
    const last = await this.lastOrCreate(channel);
    const subject = channelSubjects(this.prefix, channel).history;
    const deadline = Date.now() + this.o.outageWaitMs;
    const reader = {
      at: (seq: number) => this.retrying("history", deadline, () => this.reads.at(seq)),
      next: (seq: number) => this.retrying("history", deadline, () => this.reads.next(subject, seq)),
      page: (seq: number, count: number) => this.retrying("history", deadline, () => this.reads.page(subject, seq, count)),
    };
    const result = await readHistory(reader, channel, last, since, Math.max(1, Math.floor(limit)), this.hints.get(channel) ?? [], Date.now());
    return result.events.length > limit ? { ...result, events: result.events.slice(0, limit) } : result;
  }

  subscribe(channel: string, listener: (event: BrokerEvent) => void, onGap?: GapListener): Promise<() => void> {
    if (this.closed) return Promise.reject(brokerClosed());
    return this.feeds.subscribe(channel, listener, onGap);
  }

  /**
   * A request on the channel's event subject: every node that listens answers it (onMessage),
   * and NATS answers "no responders" at once when none does. No answer in time says nothing.
   */
  async listening(channel: string): Promise<boolean | undefined> {
    if (this.closed || this.nc.isClosed()) return undefined;
    try {
      await this.nc.request(channelSubjects(this.prefix, channel).events, new Uint8Array(0), { timeout: 1_000 });
      return true;
    } catch (e) {
      return (e as { isNoResponders?: () => boolean }).isNoResponders?.() === true ? false : undefined;
    }
  }

  /** The channel's last message; for a channel never used, a marker at offset 0 starts its epoch. */
  private lastOrCreate(channel: string): Promise<StoredEvent> {
    if (this.closed) return Promise.reject(brokerClosed());
    const subject = channelSubjects(this.prefix, channel).history;
    const epoch = randomEpoch();
    return this.retrying("read", Date.now() + this.o.outageWaitMs, async () => {
      const last = await this.reads.last(subject);
      if (last !== null) return last;
      const origin = this.origin(channel, undefined);
      const h = headers();
      h.set(H.epoch, epoch);
      h.set(H.offset, "0");
      h.set(H.history, "0 0");
      if (origin !== undefined) h.set(H.origin, `${origin.epoch} ${origin.offset}`);
      try {
        const ack = await this.js.publish(subject, new Uint8Array(0), { msgID: `epoch-${epoch}`, headers: h, expect: { lastSubjectSequence: 0 } });
        return { seq: ack.seq, epoch, offset: 0, count: 1, time: Date.now(), historySize: 0, historyTtlMs: 0, prevSeq: 0, origin, payload: new Uint8Array(0) };
      } catch (e) {
        if (e instanceof JetStreamApiError && e.code === 10071) throw new Conflict(); // another node made it
        throw e;
      }
    });
  }

  /**
   * Runs `work` until it succeeds or the deadline passes. Timeouts, lost connections and a
   * missing stream (a NATS restarted without its data) are retried; a reconnect cuts the
   * attempt in flight short, as its answer may never come. Repeating is safe: reads are
   * reads, and a publish carries the same Nats-Msg-Id each time.
   */
  private async retrying<T>(what: string, deadline: number, work: () => Promise<T>, mayStore = false): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      if (this.closed) throw brokerClosed();
      try {
        return await this.untilReconnect(work);
      } catch (e) {
        if (e instanceof ProtocastError) throw e;
        if (e instanceof Conflict) {
          // Each conflict means another publish succeeded; back off a little when busy.
          if (attempt > 3) await sleep(Math.random() * Math.min(attempt, 20));
          if (Date.now() < deadline) continue;
          throw new ProtocastError(Code.Unavailable, `${what}: too much contention on the channel`, { reason: "contention", cause: e });
        }
        if (e instanceof JetStreamApiError && e.code !== 10059) throw ProtocastError.from(e, Code.Internal);
        // A publish may still go out later: the client buffers what it sends during an outage.
        if (Date.now() >= deadline) throw mayStore ? outcomeUnknown(what, e) : unavailable(what, this.o.outageWaitMs, e);
        if (!(e instanceof Reconnected)) {
          void this.ensureStream().catch(() => undefined);
          await sleep(Math.min(50 * (attempt + 1), 250, Math.max(0, deadline - Date.now())));
        }
      }
    }
  }

  private async untilReconnect<T>(work: () => Promise<T>): Promise<T> {
    let cancel: () => void = () => undefined;
    const cut = new Promise<never>((_, reject) => {
      cancel = () => reject(new Reconnected());
    });
    this.inFlight.add(cancel);
    try {
      return await Promise.race([work(), cut]);
    } finally {
      this.inFlight.delete(cancel);
    }
  }

  private remember(channel: string, at: StoredEvent): void {
    this.tails.delete(channel);
    this.tails.set(channel, at);
    if (this.tails.size > maxTails) this.tails.delete(this.tails.keys().next().value!);
    this.saw(channel, at);
  }

  /** Notes the last position this node saw of a channel (published or received). */
  private saw(channel: string, at: BrokerPosition): void {
    const had = this.known.get(channel);
    if (had !== undefined && had.epoch === at.epoch && had.offset >= at.offset) return;
    this.known.delete(channel);
    this.known.set(channel, { epoch: at.epoch, offset: at.offset });
    if (this.known.size > maxTails) this.known.delete(this.known.keys().next().value!);
  }

  /**
   * What a message written after `tail` records of the epoch before its own: the tail's record,
   * raised to what this node saw of that epoch; for the first message of a new epoch, what
   * this node saw last.
   */
  private origin(channel: string, tail: StoredEvent | undefined): BrokerPosition | undefined {
    const known = this.known.get(channel);
    if (tail === undefined) return known !== undefined && known.offset > 0 ? known : undefined;
    const o = tail.origin;
    if (o === undefined || known === undefined || known.epoch !== o.epoch || known.offset <= o.offset) return o;
    return known;
  }

  private addHint(channel: string, hint: SeqHint): void {
    const list = this.hints.get(channel);
    if (list === undefined) return; // only subscribed channels keep hints
    list.push(hint);
    if (list.length > maxHints) list.shift();
  }

  private async open(channel: string): Promise<void> {
    const subject = channelSubjects(this.prefix, channel).events;
    this.hints.set(channel, []);
    const sub = this.nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err === null) this.onMessage(channel, msg);
      },
    });
    this.subs.get(channel)?.unsubscribe();
    this.subs.set(channel, sub);
    // Once the server has seen the SUB, every later fan-out reaches this node.
    const deadline = Date.now() + this.o.outageWaitMs;
    await this.retrying("subscribe", deadline, () => withDeadline(this.nc.flush(), deadline, () => new Error("no answer to flush")));
  }

  private closeUpstream(channel: string): void {
    this.subs.get(channel)?.unsubscribe();
    this.subs.delete(channel);
    this.hints.delete(channel);
  }

  private onMessage(channel: string, msg: Msg): void {
    // Fan-out never asks for a reply: this is listening() of another node.
    if (msg.reply !== undefined && msg.reply !== "") {
      msg.respond();
      return;
    }
    const h = msg.headers;
    if (h === undefined) return;
    const epoch = h.get(H.epoch);
    const offset = Number(h.get(H.offset));
    const count = Number(h.get(H.count) || 1);
    const seq = Number(h.get(H.seq));
    if (epoch === "" || !Number.isSafeInteger(offset) || !Number.isSafeInteger(count) || count < 1 || offset < count) return;
    // One copy of the body, shared by its events.
    const payloads = decodeBatch(msg.data.slice(), count);
    if (payloads === undefined) return; // not from a Protocast node: the feed reads the offsets from history
    if (Number.isSafeInteger(seq) && seq > 0) this.addHint(channel, { epoch, offset, seq });
    this.saw(channel, { epoch, offset });
    const first = offset - count + 1;
    const metadata = count === 1 ? metadataFromText(h.get(H.metadata)) : undefined;
    if (metadata !== undefined) {
      this.feeds.push({ channel, epoch, offset, payload: payloads[0]!, metadata });
      return;
    }
    for (let i = 0; i < count; i++) this.feeds.push({ channel, epoch, offset: first + i, payload: payloads[i]! });
  }

  /** The client restores core subscriptions itself; after each reconnect, feeds catch up. */
  private async watchStatus(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (this.closed) return;
      if (s.type !== "reconnect") continue;
      for (const cancel of Array.from(this.inFlight)) cancel();
      this.feeds.resyncAll();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.feeds.close();
    for (const sub of this.subs.values()) sub.unsubscribe();
    this.subs.clear();
    if (this.owned) await this.nc.close();
  }
}

interface Queued {
  readonly payload: Uint8Array;
  /** The event's metadata as stored ("" for none); an event with metadata goes in a message of its own. */
  readonly meta: string;
  readonly size: number;
  readonly ttl: number;
  readonly deadline: number;
  readonly resolve: (position: BrokerPosition) => void;
  readonly reject: (error: unknown) => void;
}

/** The bounds of one stored message of several events (maxBatchEvents, maxBatchBytes). */
interface BatchLimits {
  readonly maxEvents: number;
  readonly maxBytes: number;
}

/**
 * Takes the queue's first publishes that can share a message: the same history options, at
 * most maxEvents of them and, past the first, at most maxBytes of body. The first always goes,
 * however large: a bound only decides where a message ends, it never refuses a publish.
 */
function takeBatch(queue: Queued[], maxEvents: number, maxBytes: number): Queued[] {
  const first = queue[0]!;
  let n = 1;
  let bytes = 4 + first.payload.length;
  // Metadata is a header of the whole message, so an event that has some travels alone.
  for (; first.meta === "" && n < queue.length && n < maxEvents; n++) {
    const next = queue[n]!;
    if (next.meta !== "" || next.size !== first.size || next.ttl !== first.ttl || bytes + 4 + next.payload.length > maxBytes) break;
    bytes += 4 + next.payload.length;
  }
  return queue.splice(0, n);
}

class Conflict extends Error {}
class Reconnected extends Error {}

function randomEpoch(): string {
  return randomBytes(6).toString("hex");
}
