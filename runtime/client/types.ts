import type { ChannelMember } from "../service/member.js";

/** Options of one call. */
export interface CallOptions {
  /** Overrides the method's declared timeout, in milliseconds. */
  readonly timeoutMs?: number;
  /** Cancels the call. */
  readonly signal?: AbortSignal;
  /** Idempotency key to use instead of a generated one (idempotent methods only). */
  readonly idempotencyKey?: string;
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
}

/** A member of a channel with presence. */
export type { ChannelMember };

/** Events a subscription reports besides messages. */
export interface SubscriptionEvents {
  /** Members joined or left (channels with presence). */
  presence: { readonly joined: readonly ChannelMember[]; readonly left: readonly ChannelMember[] };
  /** Events between from and to were lost for good; they will never arrive. */
  gap: { readonly fromOffset: number; readonly toOffset: number; readonly reason: string };
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
  unsubscribe(): Promise<void>;
}

/** A stream of direct events pushed by the server to this session. */
export interface EventStream<M> extends AsyncIterable<M> {
  close(): void;
}
