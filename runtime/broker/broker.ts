/**
 * The pub/sub seam between a server node and whatever carries channel traffic: the embedded
 * in-memory broker, or Redis / NATS when several nodes share channels. A broker assigns every
 * published event its channel position (epoch + offset) and keeps a bounded history so that a
 * subscriber can ask what it missed.
 */
export interface Broker {
  /** Appends an event to a channel and fans it out to every node subscribed to it. */
  publish(channel: string, payload: Uint8Array, options?: ChannelHistoryOptions): Promise<BrokerPosition>;
  /**
   * Starts receiving a channel's events on this node. A node subscribes once per channel,
   * however many local clients read it. Events arrive in offset order, each once; when some
   * can never arrive (the engine lost them, or the epoch changed), `onGap` says which, and
   * delivery goes on after them. Returns the function that stops it.
   */
  subscribe(channel: string, listener: (event: BrokerEvent) => void, onGap?: (gap: BrokerGap) => void): Promise<() => void>;
  /** The channel's current position: the offset of its latest event (0 when empty). */
  position(channel: string): Promise<BrokerPosition>;
  /**
   * Events after `since` in the same epoch, oldest first, at most `limit`. When some of them
   * are gone (history trimmed or epoch changed), `gap` says which, and `events` holds what
   * remains after the gap.
   */
  history(channel: string, since: BrokerPosition, limit: number): Promise<HistoryResult>;
  close(): Promise<void>;
}

export interface BrokerPosition {
  readonly epoch: string;
  readonly offset: number;
}

export interface BrokerEvent extends BrokerPosition {
  readonly channel: string;
  readonly payload: Uint8Array;
}

/** Offsets a subscribed node will never receive; delivery continues in `epoch` at toOffset + 1. */
export interface BrokerGap {
  readonly channel: string;
  readonly epoch: string;
  /** 0 when the epoch changed: how much of the old epoch was lost cannot be known. */
  readonly fromOffset: number;
  readonly toOffset: number;
  /** "history_expired", "history_disabled" or "epoch_changed". */
  readonly reason: string;
}

export interface ChannelHistoryOptions {
  /** Events kept for recovery; 0 keeps none. */
  readonly historySize: number;
  /** Milliseconds an event stays in history; 0 means no age limit. */
  readonly historyTtlMs: number;
}

export interface HistoryResult {
  readonly position: BrokerPosition;
  readonly events: readonly BrokerEvent[];
  readonly gap: { readonly fromOffset: number; readonly toOffset: number; readonly reason: string } | undefined;
}
