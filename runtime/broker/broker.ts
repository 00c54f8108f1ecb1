/**
 * The pub/sub seam between a server node and whatever carries channel traffic: the embedded
 * in-memory broker, or Redis / NATS when several nodes share channels. A broker assigns every
 * published event its channel position (epoch + offset) and keeps a bounded history so that a
 * subscriber can ask what it missed.
 */
import type { Metadata as EventMetadata } from "../wire/envelope.js";

export interface Broker {
  /**
   * Appends an event to a channel and fans it out to every node subscribed to it. Metadata,
   * when given, is kept with the event (in history too) and delivered with it.
   */
  publish(channel: string, payload: Uint8Array, options?: ChannelHistoryOptions, metadata?: EventMetadata): Promise<BrokerPosition>;
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
  /**
   * Whether some node receives the channel's live events right now; undefined when the engine
   * cannot tell. A process that dies stops listening as soon as the engine sees its connection
   * close, seconds before it would miss a heartbeat, so the cluster asks this to tell a dead
   * node from a slow one.
   */
  listening?(channel: string): Promise<boolean | undefined>;
  close(): Promise<void>;
}

export interface BrokerPosition {
  readonly epoch: string;
  readonly offset: number;
}

export interface BrokerEvent extends BrokerPosition {
  readonly channel: string;
  readonly payload: Uint8Array;
  /** The publisher's metadata (PROTOCOL.md 3.8); undefined when it gave none. */
  readonly metadata?: EventMetadata | undefined;
}

export type { EventMetadata };

/** Offsets a subscribed node will never receive; delivery continues in `epoch` at toOffset + 1. */
export interface BrokerGap {
  readonly channel: string;
  readonly epoch: string;
  /** 0 when the epoch changed: the range is then the new epoch's offsets missing from history. */
  readonly fromOffset: number;
  readonly toOffset: number;
  /**
   * "history_expired", "history_disabled", or for a new epoch "epoch_reset" (nothing of the old
   * epoch is known lost) or "epoch_changed" (how much of it was lost is not known). When the
   * broker knows the old epoch went further than the node got, a gap in the old epoch
   * ("epoch_changed", fromOffset > 0) names those offsets first (broker/epoch-change.ts).
   */
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
  /**
   * When `since` is of another epoch: the epoch the channel had before the current one and the
   * last offset of it any node is known to have published or received; undefined when the
   * broker does not remember it.
   */
  readonly previous?: BrokerPosition | undefined;
}
