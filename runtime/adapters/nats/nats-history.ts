import type { BrokerEvent, BrokerPosition, EventMetadata, HistoryResult } from "../../broker/broker.js";
import { epochChangeReason } from "../../broker/epoch-change.js";
import { decodeBatch } from "./nats-batch.js";

/**
 * One message of a channel's subject in the JetStream stream, with its Protocast headers. A
 * message holds `count` consecutive events of the channel, `offset - count + 1` to `offset`.
 */
export interface StoredEvent {
  /** Stream sequence (shared by all channels of the stream). */
  readonly seq: number;
  readonly epoch: string;
  /** Offset of the message's last event; 0 for the marker that creates an epoch before the first publish. */
  readonly offset: number;
  /** Events in the message (1 for the marker). */
  readonly count: number;
  /** When the stream stored it, in epoch milliseconds. */
  readonly time: number;
  /** The channel's history size and ttl as of this publish. */
  readonly historySize: number;
  readonly historyTtlMs: number;
  /** Stream sequence of the channel's previous message (0: none), as the publish expected it. */
  readonly prevSeq: number;
  /** The epoch before this one and the last offset of it known when this was written. */
  readonly origin: BrokerPosition | undefined;
  /** The message body: the event's payload, or for several events their framing (nats-batch.ts). */
  readonly payload: Uint8Array;
  /** Metadata of the message's one event; a publish with metadata is never batched. */
  readonly metadata?: EventMetadata | undefined;
}

/** Offset of the message's first event. */
export function firstOffset(m: StoredEvent): number {
  return m.offset - m.count + 1;
}

/** The message's events; none when its body does not hold `count` events. */
export function eventsOf(channel: string, m: StoredEvent): BrokerEvent[] {
  const payloads = decodeBatch(m.payload, m.count) ?? [];
  const first = firstOffset(m);
  if (m.metadata !== undefined && payloads.length === 1) return [{ channel, epoch: m.epoch, offset: first, payload: payloads[0]!, metadata: m.metadata }];
  return payloads.map((payload, i) => ({ channel, epoch: m.epoch, offset: first + i, payload }));
}

/** The reads history needs from one channel's subject. */
export interface SubjectReader {
  /** The message at stream sequence `seq`, or null when it is gone. */
  at(seq: number): Promise<StoredEvent | null>;
  /** The first message of the subject with a stream sequence >= seq, or null. */
  next(seq: number): Promise<StoredEvent | null>;
  /** Up to `count` messages of the subject from stream sequence `seq` on, in order. */
  page(seq: number, count: number): Promise<StoredEvent[]>;
}

/** A known (offset, sequence) pair of a channel: the last offset of a message the node received. */
export interface SeqHint {
  readonly epoch: string;
  readonly offset: number;
  readonly seq: number;
}

/** Reads that near the channel's last message walk back from it instead of searching. */
export const tailWalkMax = 16;

/**
 * Events after `since`, given the subject's last message `last`. Offsets grow with stream
 * sequences but other channels' messages sit in between, and a message may hold several
 * consecutive events. Near the end (the usual catch-up after a short outage) each message
 * names its predecessor's sequence, so the few wanted ones are read walking back from the last. Further back, the first wanted event is found
 * by a binary search over sequences (O(log n) direct gets), started above the best hint;
 * when the hint is the event just before the wanted one, the search is a single read.
 * Age limits are applied here: times grow with sequences, so expired events form a prefix.
 */
export async function readHistory(
  reader: SubjectReader,
  channel: string,
  last: StoredEvent,
  since: BrokerPosition,
  limit: number,
  hints: readonly SeqHint[],
  now: number,
): Promise<HistoryResult> {
  const position = { epoch: last.epoch, offset: last.offset };
  const same = since.epoch === last.epoch;
  const wanted = same ? since.offset + 1 : 1;
  const result = (events: BrokerEvent[], first: number): HistoryResult => {
    if (!same) return { position, events, previous: last.origin, gap: { fromOffset: 0, toOffset: first - 1, reason: epochChangeReason(since, last.origin) } };
    if (wanted > last.offset || first <= wanted) return { position, events, gap: undefined };
    const reason = last.historySize === 0 ? "history_disabled" : "history_expired";
    return { position, events, gap: { fromOffset: wanted, toOffset: first - 1, reason } };
  };
  const cutoff = last.historyTtlMs > 0 ? now - last.historyTtlMs : -Infinity;
  const lowest = Math.max(wanted, last.offset - last.historySize + 1);
  if (wanted > last.offset || last.historySize === 0 || last.time < cutoff) return result([], last.offset + 1);

  const kept = (m: StoredEvent | null): boolean => m === null || (m.epoch === last.epoch && m.offset >= lowest && m.time >= cutoff);

  if (last.offset - lowest < tailWalkMax) {
    const back: StoredEvent[] = [last];
    let walked = true;
    for (let m = last; firstOffset(m) > lowest; ) {
      // A message without a predecessor link (written by something else) ends the walk.
      const prev = m.prevSeq > 0 ? await reader.at(m.prevSeq) : undefined;
      if (prev === undefined || (prev !== null && kept(prev) && prev.offset !== firstOffset(m) - 1)) {
        walked = false;
        break;
      }
      if (prev === null || !kept(prev)) break; // trimmed or expired: back.at(-1) is the first kept
      back.push(prev);
      m = prev;
    }
    if (walked) {
      back.reverse();
      const events = back.flatMap((m) => eventsOf(channel, m)).filter((e) => e.offset >= lowest);
      return result(events.slice(0, limit), Math.max(firstOffset(back[0]!), lowest));
    }
  }

  let lo = 1;
  for (const h of hints) if (h.epoch === last.epoch && h.offset < lowest && h.seq >= lo) lo = h.seq + 1;
  let hi = last.seq;
  let found = await reader.next(lo);
  if (!kept(found)) {
    lo = found!.seq + 1;
    found = last;
    // Smallest x in [lo, hi] whose next message is kept; `found` is next(hi) throughout.
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      const m = await reader.next(mid);
      if (kept(m)) {
        hi = mid;
        found = m;
      } else {
        lo = m!.seq + 1;
      }
    }
    if (found === null || found.seq < lo) found = await reader.next(lo);
  }
  if (found === null || found.offset > last.offset) return result([], last.offset + 1);

  const from = Math.max(firstOffset(found), lowest);
  const count = Math.min(limit, last.offset - from + 1);
  const events = eventsOf(channel, found).filter((e) => e.offset >= lowest);
  if (events.length > 0 && events.length < count) {
    // Each message holds at least one event: this many messages are enough.
    for (const m of await reader.page(found.seq + 1, count - events.length)) {
      if (m.epoch !== last.epoch || firstOffset(m) !== events.at(-1)!.offset + 1 || events.length >= count) break;
      const more = eventsOf(channel, m);
      if (more.length === 0) break;
      events.push(...more);
    }
  }
  return result(events.slice(0, count), from);
}
