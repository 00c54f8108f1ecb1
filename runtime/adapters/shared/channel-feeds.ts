import type { BrokerGap, BrokerEvent, BrokerPosition, HistoryResult } from "../../broker/broker.js";
import { epochChangeGaps } from "../../broker/epoch-change.js";
import { brokerClosed } from "./broker-errors.js";

export type { BrokerGap };

export type GapListener = (gap: BrokerGap) => void;

/** What a feed needs from an engine adapter. */
export interface FeedUpstream {
  /** Starts the engine subscription; resolves once every later publish will be pushed. */
  open(channel: string): Promise<void>;
  /** Ends the engine subscription (best effort: a dead connection has none to end). */
  close(channel: string): void;
  position(channel: string): Promise<BrokerPosition>;
  history(channel: string, since: BrokerPosition, limit: number): Promise<HistoryResult>;
}

export interface ChannelFeedsOptions {
  /** Events asked of history per read while filling a gap. */
  readonly pageSize: number;
  /** Out-of-order events held per channel while a gap is filled; past it they are re-read. */
  readonly maxPending: number;
  /** First delay before a failed fill is tried again; doubles up to 2 s. */
  readonly retryDelayMs: number;
  /**
   * How long an offset may be missing before history is asked for it, for engines whose
   * fan-out can arrive out of order. Default 0.
   */
  readonly gapGraceMs?: number;
  readonly onError: (error: unknown) => void;
}

/**
 * The node side of a networked broker: one feed per subscribed channel, shared by its local
 * listeners. A feed delivers each event of its channel once, in offset order. An offset
 * above `last + 1` means events were lost in transit (Redis pub/sub drops messages around a
 * reconnect): the feed holds what came early, reads the missing ones from history, and
 * reports as a gap whatever history no longer has.
 */
export interface ChannelFeeds {
  subscribe(channel: string, listener: (event: BrokerEvent) => void, onGap?: GapListener): Promise<() => void>;
  /** An event received from the engine; channels without a feed are ignored. */
  push(event: BrokerEvent): void;
  /** Channels with a feed, as the upstream must re-subscribe them after a reconnect. */
  channels(): string[];
  /** Compares every feed with the engine and fills what it missed (after a reconnect). */
  resyncAll(): void;
  close(): void;
}

export function createChannelFeeds(upstream: FeedUpstream, options: ChannelFeedsOptions): ChannelFeeds {
  return new ChannelFeedsImpl(upstream, options);
}

interface Listener {
  readonly event: (event: BrokerEvent) => void;
  readonly gap: GapListener | undefined;
}

interface Feed {
  readonly channel: string;
  readonly listeners: Set<Listener>;
  ready: Promise<void>;
  /** Position of the last event delivered (or skipped as a gap); undefined before the baseline. */
  last: BrokerPosition | undefined;
  /** Events of last.epoch above last.offset + 1, by offset. */
  pending: Map<number, BrokerEvent>;
  /** When pending last went from empty to not empty. */
  heldSince: number;
  /** Events of another epoch, or received before the baseline. */
  foreign: BrokerEvent[];
  /** The engine may hold events this feed has not seen (after a reconnect or an overflow). */
  syncWanted: boolean;
  pumping: boolean;
  failures: number;
  stalls: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  closed: boolean;
}

/** A fill that reads nothing new this many times in a row gives the missing offsets up. */
const maxStalls = 3;
/** History reads per pump before yielding to the event loop. */
const maxRoundsPerPump = 1_000;

class ChannelFeedsImpl implements ChannelFeeds {
  private readonly feeds = new Map<string, Feed>();
  private closed = false;

  constructor(
    private readonly upstream: FeedUpstream,
    private readonly options: ChannelFeedsOptions,
  ) {}

  async subscribe(channel: string, listener: (event: BrokerEvent) => void, onGap?: GapListener): Promise<() => void> {
    if (this.closed) throw brokerClosed();
    let feed = this.feeds.get(channel);
    if (feed === undefined) feed = this.open(channel);
    const entry: Listener = { event: listener, gap: onGap };
    feed.listeners.add(entry);
    try {
      await feed.ready;
    } catch (e) {
      feed.listeners.delete(entry);
      throw e;
    }
    const subscribed = feed;
    return () => {
      if (!subscribed.listeners.delete(entry) || subscribed.listeners.size > 0) return;
      this.drop(subscribed);
    };
  }

  private open(channel: string): Feed {
    const feed: Feed = {
      channel,
      listeners: new Set(),
      ready: Promise.resolve(),
      last: undefined,
      pending: new Map(),
      heldSince: 0,
      foreign: [],
      syncWanted: false,
      pumping: false,
      failures: 0,
      stalls: 0,
      timer: undefined,
      closed: false,
    };
    this.feeds.set(channel, feed);
    // The baseline is read after the engine confirmed the subscription, so every event
    // after it is pushed; anything pushed in between is at or below it and dropped.
    feed.ready = (async () => {
      try {
        await this.upstream.open(channel);
        const baseline = await this.upstream.position(channel);
        if (feed.closed) return;
        feed.last = baseline;
        const early = feed.foreign;
        feed.foreign = [];
        for (const event of early) this.accept(feed, event);
        void this.pump(feed);
      } catch (e) {
        this.drop(feed);
        throw e;
      }
    })();
    return feed;
  }

  private drop(feed: Feed): void {
    if (feed.closed) return;
    feed.closed = true;
    if (feed.timer !== undefined) clearTimeout(feed.timer);
    feed.pending.clear();
    feed.foreign = [];
    if (this.feeds.get(feed.channel) === feed) {
      this.feeds.delete(feed.channel);
      this.upstream.close(feed.channel);
    }
  }

  push(event: BrokerEvent): void {
    const feed = this.feeds.get(event.channel);
    if (feed !== undefined) this.accept(feed, event);
  }

  private accept(feed: Feed, event: BrokerEvent): void {
    const last = feed.last;
    if (feed.closed) return;
    if (last === undefined || event.epoch !== last.epoch) {
      if (feed.foreign.length < this.options.maxPending) feed.foreign.push(event);
      else feed.syncWanted = true;
      if (last !== undefined) void this.pump(feed);
      return;
    }
    if (event.offset <= last.offset) return; // already delivered: a duplicate
    if (event.offset === last.offset + 1 && !feed.pumping && feed.pending.size === 0) {
      this.deliver(feed, event);
      return;
    }
    // Events above the limit are not kept; the sync that follows reads them from history.
    if (feed.pending.size === 0) feed.heldSince = Date.now();
    if (feed.pending.size < this.options.maxPending) feed.pending.set(event.offset, event);
    else feed.syncWanted = true;
    void this.pump(feed);
  }

  channels(): string[] {
    return Array.from(this.feeds.keys());
  }

  resyncAll(): void {
    for (const feed of this.feeds.values()) {
      if (feed.last === undefined) continue; // still opening: its baseline comes after the reconnect
      feed.syncWanted = true;
      void this.pump(feed);
    }
  }

  private deliver(feed: Feed, event: BrokerEvent): void {
    feed.last = { epoch: event.epoch, offset: event.offset };
    for (const l of feed.listeners) {
      try {
        l.event(event);
      } catch (e) {
        this.options.onError(e);
      }
    }
  }

  private reportGap(feed: Feed, gap: BrokerGap): void {
    feed.last = { epoch: gap.epoch, offset: gap.toOffset };
    for (const l of feed.listeners) {
      try {
        l.gap?.(gap);
      } catch (e) {
        this.options.onError(e);
      }
    }
  }

  /** Delivers the held events that continue `last`. */
  private drain(feed: Feed): void {
    for (;;) {
      const last = feed.last!;
      const next = feed.pending.get(last.offset + 1);
      if (next === undefined) return;
      feed.pending.delete(next.offset);
      this.deliver(feed, next);
    }
  }

  /**
   * One worker per feed: reads history until nothing is missing. Every round either moves
   * `last` forward, or ends (and retries later with backoff).
   */
  private async pump(feed: Feed): Promise<void> {
    if (feed.pumping || feed.closed || feed.last === undefined) return;
    feed.pumping = true;
    try {
      for (let round = 0; ; round++) {
        this.drain(feed);
        if (feed.closed) return;
        if (!feed.syncWanted && feed.pending.size === 0 && feed.foreign.length === 0) {
          feed.stalls = 0;
          return;
        }
        if (round >= maxRoundsPerPump) {
          this.retryLater(feed, 0);
          return;
        }
        const grace = this.options.gapGraceMs ?? 0;
        if (grace > 0 && !feed.syncWanted && feed.foreign.length === 0) {
          const wait = feed.heldSince + grace - Date.now();
          if (wait > 0) {
            this.retryLater(feed, wait);
            return;
          }
        }
        const since = feed.last!;
        const result = await this.upstream.history(feed.channel, since, this.options.pageSize);
        if (feed.closed) return;
        feed.failures = 0;
        if (!this.apply(feed, since, result)) {
          if (++feed.stalls < maxStalls) {
            this.retryLater(feed, this.options.retryDelayMs);
            return;
          }
          this.giveUpMissing(feed);
        }
      }
    } catch (e) {
      if (feed.closed) return;
      this.options.onError(e);
      feed.failures++;
      this.retryLater(feed, Math.min(this.options.retryDelayMs * 2 ** (feed.failures - 1), 2_000));
    } finally {
      feed.pumping = false;
    }
  }

  private retryLater(feed: Feed, delayMs: number): void {
    if (feed.timer !== undefined || feed.closed) return;
    feed.timer = setTimeout(() => {
      feed.timer = undefined;
      void this.pump(feed);
    }, delayMs);
    feed.timer.unref?.();
  }

  /** Applies one history read; false when it taught nothing new. */
  private apply(feed: Feed, since: BrokerPosition, result: HistoryResult): boolean {
    const { position } = result;
    // The first event held in the current epoch bounds any reported gap: it is not missing.
    let held = Infinity;
    if (position.epoch === since.epoch) {
      for (const offset of feed.pending.keys()) if (offset > since.offset && offset < held) held = offset;
    }
    for (const e of feed.foreign) if (e.epoch === position.epoch && e.offset < held) held = e.offset;

    if (position.epoch !== since.epoch) {
      // The engine lost the channel's history: say what of the old epoch is known lost (its
      // offsets past ours that the broker remembers, or that we held back), then continue in
      // the new epoch.
      const firstKept = result.gap !== undefined ? result.gap.toOffset : (result.events[0]?.offset ?? position.offset + 1) - 1;
      const to = Math.min(firstKept, held - 1);
      let seen = 0;
      for (const offset of feed.pending.keys()) seen = Math.max(seen, offset);
      for (const e of feed.foreign) if (e.epoch === since.epoch) seen = Math.max(seen, e.offset);
      feed.pending = new Map();
      for (const g of epochChangeGaps(since, position.epoch, to, result.previous, seen)) this.reportGap(feed, { channel: feed.channel, ...g });
    } else if (result.gap !== undefined) {
      const to = Math.min(result.gap.toOffset, held - 1);
      if (to > since.offset) {
        this.reportGap(feed, { channel: feed.channel, epoch: position.epoch, fromOffset: since.offset + 1, toOffset: to, reason: result.gap.reason });
      }
    }

    const last = feed.last!;
    // Held events of another epoch than the engine's are stale: their history is gone.
    for (const e of feed.foreign) if (e.epoch === last.epoch && e.offset > last.offset) feed.pending.set(e.offset, e);
    feed.foreign = [];
    for (const offset of feed.pending.keys()) if (offset <= last.offset) feed.pending.delete(offset);
    for (const e of result.events) {
      if (e.epoch === last.epoch && e.offset > last.offset && feed.pending.size < this.options.maxPending) feed.pending.set(e.offset, e);
    }
    this.drain(feed);

    const after = feed.last!;
    if (after.epoch === position.epoch && after.offset >= position.offset) feed.syncWanted = false;
    const moved = after.epoch !== since.epoch || after.offset > since.offset;
    if (moved) feed.stalls = 0;
    return moved || (!feed.syncWanted && feed.pending.size === 0);
  }

  /**
   * History says nothing is missing, yet later events are held: a history read that lags
   * its engine. After a few tries the missing offsets are reported rather than waited for.
   */
  private giveUpMissing(feed: Feed): void {
    feed.stalls = 0;
    const last = feed.last!;
    let next = Infinity;
    for (const offset of feed.pending.keys()) if (offset > last.offset && offset < next) next = offset;
    if (next === Infinity) {
      feed.pending.clear();
      feed.syncWanted = false;
      return;
    }
    this.reportGap(feed, { channel: feed.channel, epoch: last.epoch, fromOffset: last.offset + 1, toOffset: next - 1, reason: "history_expired" });
  }

  close(): void {
    this.closed = true;
    for (const feed of Array.from(this.feeds.values())) {
      feed.closed = true;
      if (feed.timer !== undefined) clearTimeout(feed.timer);
    }
    this.feeds.clear();
  }
}
