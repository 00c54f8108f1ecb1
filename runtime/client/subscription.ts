import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { Code } from "../errors/code.js";
import { ProtocastError } from "../errors/protocast-error.js";
import type { ChannelDef } from "../service/define.js";
import type { Member, Metadata as MetadataFrame, Subscribed } from "../wire/envelope.js";
import { NO_METADATA, metadataView } from "../wire/metadata.js";
import { AsyncQueue } from "./async-queue.js";
import { Emitter } from "./emitter.js";
import type { ChannelMember, ChannelMessage, Subscription, SubscriptionEvents } from "./types.js";

/** Default bound of messages buffered for a reader that does not keep up. */
export const DEFAULT_SUBSCRIPTION_BUFFER = 10_000;

/**
 * Client side of one subscription. The connection feeds it frames; it decodes, dedupes by
 * offset, tracks the position to recover from, and hands messages to one async reader.
 */
export class SubscriptionImpl<M extends DescMessage> implements Subscription<MessageShape<M>> {
  readonly ready: Promise<void>;
  readonly members = new Map<string, ChannelMember>();
  position = { epoch: "", offset: 0 };
  /** Offset last acknowledged to the server. */
  ackedOffset = 0;
  /** Request id of the Subscribe in flight; 0 when none. */
  requestId = 0;
  active = false;
  /** Set after the first Subscribed; later ones are re-syncs. */
  private wasActive = false;
  closed = false;
  /**
   * Messages; a message that came with metadata is queued with it (Carried), and the queue's
   * view gives the reader what it asked for: the message alone, or withMetadata()'s pair.
   */
  private readonly queue: AsyncQueue<MessageShape<M>>;
  private readonly emitter = new Emitter<SubscriptionEvents>();
  private settle: { resolve: () => void; reject: (e: unknown) => void } | undefined;

  constructor(
    readonly def: ChannelDef<object, M>,
    readonly channel: string,
    private readonly bufferSize: number,
    private readonly release: (sub: SubscriptionImpl<M>) => Promise<void>,
  ) {
    this.queue = new AsyncQueue(() => void this.unsubscribe());
    this.ready = new Promise((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    // The application may never await ready; its failure still surfaces through iteration.
    this.ready.catch(() => undefined);
  }

  on<K extends keyof SubscriptionEvents>(event: K, listener: (data: SubscriptionEvents[K]) => void): () => void {
    return this.emitter.on(event, listener);
  }

  [Symbol.asyncIterator](): AsyncIterator<MessageShape<M>> {
    return this.queue;
  }

  withMetadata(): AsyncIterable<ChannelMessage<MessageShape<M>>> {
    this.queue.view = withMetadataView as unknown as (item: MessageShape<M>) => MessageShape<M>;
    return this.queue as unknown as AsyncIterable<ChannelMessage<MessageShape<M>>>;
  }

  /** Whether the client asks for recovery when it subscribes again. */
  get canRecover(): boolean {
    // At-most-once channels accept loss: asking what was missed would only report noise.
    return this.position.epoch !== "" && this.def.rules.delivery !== "at-most-once";
  }

  onSubscribed(s: Subscribed): void {
    this.active = true;
    if (s.id !== 0) this.requestId = 0;
    if (s.gap !== undefined) {
      // The server may count from an older position than ours (it re-syncs from what we
      // acknowledged): only the part of the gap we do not already have is lost.
      // A gap from offset 0 starts a new epoch (or restarts ours, when our position is past
      // the channel's end); any other names offsets of the epoch it comes with.
      const sameEpoch = s.epoch === this.position.epoch && s.gap.fromOffset > 0;
      const from = sameEpoch ? Math.max(s.gap.fromOffset, this.position.offset + 1) : s.gap.fromOffset;
      if (!sameEpoch || from <= s.gap.toOffset) {
        const previous = s.gap.fromOffset === 0 && this.position.epoch !== "" ? { previous: { ...this.position } } : {};
        this.emitter.emit("gap", { fromOffset: from, toOffset: s.gap.toOffset, reason: s.gap.reason, epoch: s.epoch, ...previous });
        this.position = { epoch: s.epoch, offset: s.gap.toOffset };
      }
    } else if (!s.recovered) {
      // Without recovery the stream starts at the server's current position.
      this.position = { epoch: s.epoch, offset: s.offset };
    }
    // With recovery the missed events follow this frame and advance the position themselves.
    this.ackedOffset = Math.min(this.ackedOffset, this.position.offset);
    const before = new Map(this.members);
    this.members.clear();
    for (const m of s.members) this.members.set(m.clientId, toMember(m));
    if (this.wasActive) {
      // A re-sync after a reconnect: tell the reader who came and went meanwhile.
      const joined = Array.from(this.members.values()).filter((m) => !before.has(m.clientId));
      const left = Array.from(before.values()).filter((m) => !this.members.has(m.clientId));
      if (joined.length > 0 || left.length > 0) this.emitter.emit("presence", { joined, left });
    }
    this.wasActive = true;
    this.settle?.resolve();
    this.settle = undefined;
  }

  onEvent(epoch: string, offset: number, payload: Uint8Array, metadata?: MetadataFrame): void {
    if (this.closed) return;
    if (epoch === this.position.epoch && offset <= this.position.offset) return; // duplicate
    const reliable = this.def.rules.delivery !== "at-most-once";
    if (reliable && epoch === this.position.epoch && offset > this.position.offset + 1 && this.position.offset > 0) {
      this.emitter.emit("gap", { fromOffset: this.position.offset + 1, toOffset: offset - 1, reason: "dropped", epoch });
    }
    this.position = { epoch, offset };
    let message: MessageShape<M>;
    try {
      message = this.def.messageCodec.decode(payload);
    } catch (e) {
      this.fail(new ProtocastError(Code.DataLoss, `event of ${this.channel} does not decode`, { cause: e }));
      return;
    }
    if (this.queue.length >= this.bufferSize) {
      if (this.def.rules.delivery === "at-most-once") {
        this.queue.shift();
      } else {
        this.fail(new ProtocastError(Code.ResourceExhausted, `reader of ${this.channel} is more than ${this.bufferSize} messages behind`, { reason: "subscription_buffer_full" }));
        return;
      }
    }
    if (metadata === undefined || metadata.entries.length === 0) this.queue.push(message);
    else {
      // Readers of plain messages take the message out; withMetadata() replaces this view.
      this.queue.view ??= messageView as unknown as (item: MessageShape<M>) => MessageShape<M>;
      this.queue.push(new Carried(message, metadata) as unknown as MessageShape<M>);
    }
  }

  onPresence(joined: readonly Member[], left: readonly Member[]): void {
    for (const m of joined) this.members.set(m.clientId, toMember(m));
    for (const m of left) this.members.delete(m.clientId);
    this.emitter.emit("presence", { joined: joined.map(toMember), left: left.map(toMember) });
  }

  /** Ends the subscription with an error the reader sees. */
  fail(error: ProtocastError): void {
    if (this.closed) return;
    this.closed = true;
    this.active = false;
    this.settle?.reject(error);
    this.settle = undefined;
    this.queue.fail(error);
    void this.release(this);
  }

  /** Ends the subscription without error (server said Unsubscribed, or connection closed). */
  end(): void {
    if (this.closed) return;
    this.closed = true;
    this.active = false;
    this.settle?.reject(new ProtocastError(Code.Canceled, `subscription to ${this.channel} ended`));
    this.settle = undefined;
    this.queue.end();
  }

  async unsubscribe(): Promise<void> {
    if (this.closed) return;
    this.end();
    await this.release(this);
  }
}

/** A message queued with the metadata it came with. */
class Carried {
  constructor(
    readonly message: unknown,
    readonly metadata: MetadataFrame,
  ) {}
}

function messageView(item: unknown): unknown {
  return item instanceof Carried ? item.message : item;
}

function withMetadataView(item: unknown): ChannelMessage<unknown> {
  return item instanceof Carried ? { message: item.message, metadata: metadataView(item.metadata) } : { message: item, metadata: NO_METADATA };
}

function toMember(m: Member): ChannelMember {
  return { clientId: m.clientId, principal: m.principal };
}
