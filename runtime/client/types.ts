import type { ChannelMember } from "../service/member.js";
import type { Metadata } from "../wire/metadata.js";

/** Options of one call. */
export interface CallOptions {
  /** Overrides the method's declared timeout, in milliseconds. */
  readonly timeoutMs?: number;
  /** Cancels the call. */
  readonly signal?: AbortSignal;
  /** Idempotency key to use instead of a generated one (idempotent methods only). */
  readonly idempotencyKey?: string;
  /**
   * Metadata of this call (PROTOCOL.md 3.8), laid over the connection's (ConnectOptions.metadata)
   * key by key; the handler reads it as ctx.metadata. INVALID_ARGUMENT "bad_metadata" before
   * sending when it breaks the rules.
   */
  readonly metadata?: Metadata;
}

/** Options of one subscription. */
export interface SubscribeOptions {
  /** Ends the subscription when aborted. */
  readonly signal?: AbortSignal;
  /** Most messages buffered for a consumer that does not read; past it the oldest are dropped (at-most-once) or the subscription fails (otherwise). Default 10000. */
  readonly bufferSize?: number;
}

/** Options of one client publish. */
export interface PublishOptions {
  /** Wait for the server to accept the publish (default true for at-least-once channels). */
  readonly confirm?: boolean;
  readonly timeoutMs?: number;
  /** Metadata delivered with the event to every subscriber, over the connection's, as for calls. */
  readonly metadata?: Metadata;
}

/** A channel message with the metadata its publisher attached (Subscription.withMetadata). */
export interface ChannelMessage<M> {
  readonly message: M;
  /** Read-only; empty when the publisher attached none. */
  readonly metadata: Metadata;
}

/** A member of a channel with presence. */
export type { ChannelMember };

/** Events a subscription reports besides messages. */
export interface SubscriptionEvents {
  /** Members joined or left (channels with presence). */
  presence: { readonly joined: readonly ChannelMember[]; readonly left: readonly ChannelMember[] };
  /**
   * Events between from and to of `epoch` were lost for good; they will never arrive. Reasons
   * (PROTOCOL.md 6.4): "history_expired", "history_disabled", "dropped"; for a new epoch
   * (fromOffset 0, the range is then the new epoch's missing start, usually empty)
   * "epoch_reset" when nothing of the old epoch is known lost and "epoch_changed" when that is
   * not known, with `previous`, the last position the subscription had in the old epoch. Old-epoch
   * offsets the server knows were lost come first as their own "epoch_changed" gap in that epoch.
   */
  gap: {
    readonly fromOffset: number;
    readonly toOffset: number;
    readonly reason: string;
    readonly epoch: string;
    readonly previous?: { readonly epoch: string; readonly offset: number };
  };
}

/**
 * A live subscription to a channel. Iterate it to read messages in order; leaving the loop
 * (or calling unsubscribe) leaves the channel.
 */
export interface Subscription<M> extends AsyncIterable<M> {
  /** The concrete channel name. */
  readonly channel: string;
  /** Resolves once the server confirmed the subscription; rejects with a ProtocastError. */
  readonly ready: Promise<void>;
  /** Current members, for channels with presence. */
  readonly members: ReadonlyMap<string, ChannelMember>;
  /** Position of the last message received. */
  readonly position: { readonly epoch: string; readonly offset: number };
  on<K extends keyof SubscriptionEvents>(event: K, listener: (data: SubscriptionEvents[K]) => void): () => void;
  /**
   * The same messages, each with the metadata its publisher attached: iterate this instead of
   * the subscription itself (both read from one queue).
   */
  withMetadata(): AsyncIterable<ChannelMessage<M>>;
  unsubscribe(): Promise<void>;
}

/** A stream of direct events pushed by the server to this session. */
export interface EventStream<M> extends AsyncIterable<M> {
  close(): void;
}
