import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { Code, codeFromWire } from "../errors/code.js";
import { ProtocastError } from "../errors/protocast-error.js";
import type { ChannelDef, EventDef } from "../service/define.js";
import type { ChannelPosition, Event, Presence, Push, Subscribed, Unsubscribed } from "../wire/envelope.js";
import { AsyncQueue } from "./async-queue.js";
import type { Link } from "./link.js";
import { DEFAULT_SUBSCRIPTION_BUFFER, SubscriptionImpl } from "./subscription.js";
import type { Tracing } from "../session/tracing.js";
import { metadataView } from "../wire/metadata.js";
import { receiveSpan } from "./outgoing.js";
import type { EventStream, SubscribeOptions, Subscription } from "./types.js";

/** A reader of one direct event kind. */
interface PushReader {
  deliver(payload: Uint8Array): void;
  end(): void;
}

type AnySubscription = SubscriptionImpl<DescMessage>;

/**
 * What a connection receives without asking each time: its channel subscriptions (Subscribe,
 * the Events and Presence that follow, re-subscribing after a reconnect, the positions to
 * acknowledge; PROTOCOL.md 6) and the readers of direct events (Push; PROTOCOL.md 3.6).
 */
export class Channels {
  private readonly subs = new Map<string, AnySubscription>();
  /** Subscriptions whose Subscribe went out on the current session. */
  private readonly knownToSession = new Set<AnySubscription>();
  private readonly streams = new Map<string, Set<PushReader>>();

  constructor(
    private readonly link: Link,
    private readonly tracing?: Tracing,
  ) {}

  subscribe<M extends DescMessage>(def: ChannelDef<any, M, any>, params: object, options: SubscribeOptions = {}): Subscription<MessageShape<M>> {
    const channel = def.topic(params);
    const sub = new SubscriptionImpl<M>(def, channel, options.bufferSize ?? DEFAULT_SUBSCRIPTION_BUFFER, (s) => this.release(s as unknown as AnySubscription));
    if (this.link.ended) {
      sub.fail(new ProtocastError(Code.Unavailable, "connection is closed"));
      return sub;
    }
    if (this.subs.has(channel)) {
      sub.fail(new ProtocastError(Code.AlreadyExists, `already subscribed to ${channel} on this connection; share that subscription`));
      return sub;
    }
    this.subs.set(channel, sub as unknown as AnySubscription);
    options.signal?.addEventListener("abort", () => void sub.unsubscribe(), { once: true });
    this.sendSubscribe(sub as unknown as AnySubscription);
    return sub;
  }

  /** A stream of the direct events of one kind; any number of readers may read the same kind. */
  events<M extends DescMessage>(def: EventDef<M, any>, closed: boolean): EventStream<MessageShape<M>> {
    let set = this.streams.get(def.path);
    if (set === undefined) this.streams.set(def.path, (set = new Set()));
    const readers = set;
    const queue = new AsyncQueue<MessageShape<M>>(() => readers.delete(reader));
    const reader: PushReader = {
      deliver: (bytes) => {
        try {
          queue.push(def.messageCodec.decode(bytes));
        } catch (e) {
          queue.fail(new ProtocastError(Code.DataLoss, `event ${def.path} does not decode`, { cause: e }));
        }
      },
      end: () => queue.end(),
    };
    readers.add(reader);
    if (closed) queue.end();
    return {
      [Symbol.asyncIterator]: () => queue,
      close: () => void queue.return(),
    };
  }

  onSubscribed(s: Subscribed): void {
    const sub = this.subs.get(s.channel);
    // id 0 is the server re-syncing a subscription after a resume.
    if (sub === undefined || (s.id !== 0 && sub.requestId !== s.id)) return;
    sub.onSubscribed(s);
  }

  /** A channel Event; true when it should be acknowledged (an at-least-once or exactly-once channel). */
  onEvent(e: Event): boolean {
    const sub = this.subs.get(e.channel);
    if (sub === undefined) return false;
    if (e.metadata !== undefined && this.tracing !== undefined) receiveSpan(this.tracing, sub.def.rules.pattern, e.channel, metadataView(e.metadata));
    sub.onEvent(e.epoch, e.offset, e.payload, e.metadata);
    return sub.def.rules.delivery !== "at-most-once";
  }

  onPresence(p: Presence): void {
    this.subs.get(p.channel)?.onPresence(p.joined, p.left);
  }

  /** The server ended a subscription on its own (PROTOCOL.md 6.7). */
  onUnsubscribed(u: Unsubscribed): void {
    const sub = this.subs.get(u.channel);
    if (sub === undefined || sub.requestId !== 0) return;
    this.subs.delete(u.channel);
    if (u.code === 0) sub.end();
    else sub.fail(new ProtocastError(codeFromWire(u.code), u.reason || `removed from ${u.channel}`));
  }

  onPush(p: Push): void {
    const set = this.streams.get(p.method);
    if (set === undefined) return;
    for (const r of set) r.deliver(p.payload);
  }

  /** An Error answering a Subscribe: the subscription fails. False when no Subscribe has that id. */
  onError(id: number, err: ProtocastError): boolean {
    if (id === 0) return false;
    for (const [channel, sub] of this.subs) {
      if (sub.requestId === id) {
        this.subs.delete(channel);
        sub.fail(err);
        return true;
      }
    }
    return false;
  }

  /** The transport is gone: no subscription is active until the server confirms it again. */
  deactivate(): void {
    for (const sub of this.subs.values()) sub.active = false;
  }

  /** A new session began: the server knows none of the subscriptions. */
  sessionChanged(): void {
    this.knownToSession.clear();
  }

  /**
   * Sends Subscribe for every subscription the session does not know. On a new session each
   * asks for what it missed; after a resume the server re-syncs the ones it knows by itself
   * (Subscribed with id 0).
   */
  subscribeUnknown(): void {
    for (const sub of this.subs.values()) if (!this.knownToSession.has(sub)) this.sendSubscribe(sub);
  }

  /** Positions of reliable channels that advanced since they were last acknowledged (PROTOCOL.md 4.4); marks them acknowledged. */
  positionsToAck(): ChannelPosition[] {
    const channels: ChannelPosition[] = [];
    for (const sub of this.subs.values()) {
      if (sub.active && sub.def.rules.delivery !== "at-most-once" && sub.position.offset > sub.ackedOffset) {
        channels.push({ channel: sub.channel, epoch: sub.position.epoch, offset: sub.position.offset });
        sub.ackedOffset = sub.position.offset;
      }
    }
    return channels;
  }

  /** The connection ended: subscriptions and streams end, with `error` when it failed. */
  finish(error: ProtocastError | undefined, err: ProtocastError): void {
    for (const sub of Array.from(this.subs.values())) {
      if (error === undefined) sub.end();
      else sub.fail(err);
    }
    this.subs.clear();
    for (const set of this.streams.values()) for (const r of set) r.end();
    this.streams.clear();
  }

  private sendSubscribe(sub: AnySubscription): void {
    if (!this.link.ready) return;
    this.knownToSession.add(sub);
    sub.requestId = this.link.takeId();
    const value = { id: sub.requestId, method: sub.def.path, channel: sub.channel, recover: sub.canRecover, epoch: sub.position.epoch, offset: sub.position.offset };
    this.link.sendSequenced({ case: "subscribe", value });
  }

  private release(sub: AnySubscription): Promise<void> {
    if (this.subs.get(sub.channel) !== sub) return Promise.resolve();
    this.subs.delete(sub.channel);
    this.knownToSession.delete(sub);
    if (this.link.ready) this.link.sendSequenced({ case: "unsubscribe", value: { id: this.link.takeId(), channel: sub.channel } });
    return Promise.resolve();
  }
}
