import type { Broker, BrokerEvent, BrokerPosition, ChannelHistoryOptions, EventMetadata, HistoryResult } from "./broker.js";
import { optionKeys, rejectUnknownOptions } from "../errors/check-options.js";

export interface MemoryBrokerOptions {
  /** Clock for history expiry. Default Date.now. */
  readonly now?: () => number;
  /** Epoch of every channel; a new broker gets a random one so old offsets are detected. */
  readonly epoch?: string;
}

const OPTION_KEYS = optionKeys<MemoryBrokerOptions>()("now", "epoch");

/**
 * The embedded broker: channels live in this process. Fan-out is synchronous, inside
 * publish(), so an event reaches local subscribers in the same turn it was published.
 */
export function createMemoryBroker(options: MemoryBrokerOptions = {}): Broker {
  rejectUnknownOptions("createMemoryBroker", options, OPTION_KEYS);
  return new MemoryBroker(options.now ?? Date.now, options.epoch ?? randomEpoch());
}

interface Stored {
  readonly event: BrokerEvent;
  readonly at: number;
}

interface ChannelState {
  offset: number;
  /** History bounds of the latest publish; reads apply the age bound too. */
  historySize: number;
  historyTtlMs: number;
  history: Stored[];
  /** Index of the oldest live entry in history; entries before it are trimmed lazily. */
  head: number;
  readonly listeners: Set<(event: BrokerEvent) => void>;
}

class MemoryBroker implements Broker {
  private readonly channels = new Map<string, ChannelState>();
  private closed = false;

  constructor(
    private readonly now: () => number,
    private readonly epoch: string,
  ) {}

  private state(channel: string): ChannelState {
    let s = this.channels.get(channel);
    if (s === undefined) {
      s = { offset: 0, historySize: 0, historyTtlMs: 0, history: [], head: 0, listeners: new Set() };
      this.channels.set(channel, s);
    }
    return s;
  }

  publish(channel: string, payload: Uint8Array, options?: ChannelHistoryOptions, metadata?: EventMetadata): Promise<BrokerPosition> {
    if (this.closed) return Promise.reject(new Error("broker closed"));
    const s = this.state(channel);
    s.offset += 1;
    const event: BrokerEvent = metadata === undefined ? { channel, epoch: this.epoch, offset: s.offset, payload } : { channel, epoch: this.epoch, offset: s.offset, payload, metadata };
    const size = options?.historySize ?? 0;
    s.historySize = size;
    s.historyTtlMs = options?.historyTtlMs ?? 0;
    if (size > 0) {
      s.history.push({ event, at: this.now() });
      this.trim(s, size, options?.historyTtlMs ?? 0);
    } else if (s.history.length > 0) {
      s.history = [];
      s.head = 0;
    }
    for (const listener of s.listeners) listener(event);
    return Promise.resolve({ epoch: this.epoch, offset: s.offset });
  }

  private trim(s: ChannelState, size: number, ttlMs: number): void {
    const live = s.history.length - s.head;
    if (live > size) s.head += live - size;
    if (ttlMs > 0) {
      const oldest = this.now() - ttlMs;
      while (s.head < s.history.length && s.history[s.head]!.at < oldest) s.head++;
    }
    // Compact once the dead prefix is as long as the live part, so trimming stays O(1) amortised.
    if (s.head > 64 && s.head * 2 > s.history.length) {
      s.history = s.history.slice(s.head);
      s.head = 0;
    }
  }

  subscribe(channel: string, listener: (event: BrokerEvent) => void): Promise<() => void> {
    const s = this.state(channel);
    s.listeners.add(listener);
    return Promise.resolve(() => {
      s.listeners.delete(listener);
      if (s.listeners.size === 0 && s.offset === 0) this.channels.delete(channel);
    });
  }

  listening(channel: string): Promise<boolean> {
    return Promise.resolve((this.channels.get(channel)?.listeners.size ?? 0) > 0);
  }

  position(channel: string): Promise<BrokerPosition> {
    const s = this.channels.get(channel);
    return Promise.resolve({ epoch: this.epoch, offset: s?.offset ?? 0 });
  }

  history(channel: string, since: BrokerPosition, limit: number): Promise<HistoryResult> {
    const s = this.channels.get(channel);
    const position = { epoch: this.epoch, offset: s?.offset ?? 0 };
    if (since.epoch !== this.epoch) {
      // Offsets of another epoch are not comparable: whatever came after `since` there is gone.
      // Report that, then replay what this epoch still holds from its start.
      const live = s === undefined ? [] : s.history.slice(s.head).map((e) => e.event);
      const first = live[0]?.offset ?? position.offset + 1;
      return Promise.resolve({
        position,
        events: live.slice(0, limit),
        gap: { fromOffset: 0, toOffset: first - 1, reason: "epoch_changed" },
      });
    }
    if (s === undefined || since.offset >= s.offset) return Promise.resolve({ position, events: [], gap: undefined });
    if (s.historySize > 0) this.trim(s, s.historySize, s.historyTtlMs);
    const live = s.history.slice(s.head);
    const first = live[0]?.event.offset ?? s.offset + 1;
    const wanted = since.offset + 1;
    let gap: HistoryResult["gap"];
    if (first > wanted) {
      gap = { fromOffset: wanted, toOffset: first - 1, reason: s.historySize === 0 ? "history_disabled" : "history_expired" };
    }
    const events = live.filter((e) => e.event.offset >= wanted).slice(0, limit).map((e) => e.event);
    return Promise.resolve({ position, events, gap });
  }

  close(): Promise<void> {
    this.closed = true;
    this.channels.clear();
    return Promise.resolve();
  }
}

function randomEpoch(): string {
  const bytes = new Uint8Array(6);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
