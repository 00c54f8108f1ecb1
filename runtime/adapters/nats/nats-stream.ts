import { nanos, type MsgHdrs } from "@nats-io/transport-node";
import { AckPolicy, DeliverPolicy, type JetStreamClient, type JetStreamManager, type JsMsg, type StoredMsg } from "@nats-io/jetstream";
import type { StoredEvent } from "./nats-history.js";
import { metadataFromText } from "../shared/metadata-text.js";

/**
 * Headers of a Protocast message in the stream (and, with `seq`, of its fan-out copy):
 * epoch, the offset of the message's last event, the number of events it holds (absent: 1),
 * "<historySize> <historyTtlMs>" of the publish, the stream sequence of the channel's previous
 * message, for fan-out the stream sequence of the message itself, and "<epoch> <offset>": the
 * epoch before this message's and the last offset of it known when the message was written
 * (absent when not known; see broker/epoch-change.ts), and the event's metadata as JSON
 * [key, value] pairs (absent when it has none; a message with metadata holds one event).
 */
export const natsHeaders = {
  epoch: "Protocast-Epoch",
  offset: "Protocast-Offset",
  count: "Protocast-Count",
  history: "Protocast-History",
  prev: "Protocast-Prev",
  seq: "Protocast-Seq",
  origin: "Protocast-Origin",
  metadata: "Protocast-Metadata",
} as const;

/** Pages up to this many events are read with direct gets; longer ones with a consumer. */
const directPageMax = 16;

/** Reads of one JetStream stream (which must allow direct gets). */
export interface StreamReads {
  /** The subject's last message, or null. */
  last(subject: string): Promise<StoredEvent | null>;
  at(seq: number): Promise<StoredEvent | null>;
  /** The subject's first message at stream sequence `seq` or after, or null. */
  next(subject: string, seq: number): Promise<StoredEvent | null>;
  /** Up to `count` messages of the subject from stream sequence `seq` on. */
  page(subject: string, seq: number, count: number): Promise<StoredEvent[]>;
}

export function createStreamReads(jsm: JetStreamManager, js: JetStreamClient, stream: string): StreamReads {
  const get = async (query: { seq: number; next_by_subj?: string } | { last_by_subj: string }): Promise<StoredEvent | null> => {
    const m = await jsm.direct.getMessage(stream, query);
    return m === null ? null : fromStoredMsg(m);
  };
  return {
    last: (subject) => get({ last_by_subj: subject }),
    at: (seq) => get({ seq }),
    next: (subject, seq) => get({ seq, next_by_subj: subject }),
    async page(subject, seq, count) {
      const out: StoredEvent[] = [];
      if (count <= directPageMax) {
        for (let at = seq; out.length < count; ) {
          const m = await get({ seq: at, next_by_subj: subject });
          if (m === null) break;
          out.push(m);
          at = m.seq + 1;
        }
        return out;
      }
      // One round trip per event adds up (~0.3 ms each here); a throw-away consumer streams
      // a long page in one go (1000 events in ~70 ms).
      const info = await jsm.consumers.add(stream, {
        filter_subject: subject,
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: seq,
        ack_policy: AckPolicy.None,
        inactive_threshold: nanos(30_000),
        mem_storage: true,
        num_replicas: 1,
      });
      try {
        const messages = await js.consumers.getConsumerFromInfo(info).fetch({ max_messages: count, expires: 2_000 });
        for await (const m of messages) {
          out.push(fromJsMsg(m));
          if (out.length >= count || m.info.pending === 0) break;
        }
      } finally {
        jsm.consumers.delete(stream, info.name).catch(() => undefined);
      }
      return out;
    },
  };
}

function header(h: MsgHdrs | undefined, name: string): string {
  return h?.get(name) ?? "";
}

/** Messages without Protocast headers read as offset 0 of epoch "", which history skips. */
function decode(seq: number, h: MsgHdrs | undefined, time: number, payload: Uint8Array): StoredEvent {
  const [size, ttl] = header(h, natsHeaders.history).split(" ").map(Number);
  const [originEpoch, originOffset] = header(h, natsHeaders.origin).split(" ");
  return {
    origin: originEpoch ? { epoch: originEpoch, offset: Number(originOffset) || 0 } : undefined,
    seq,
    epoch: header(h, natsHeaders.epoch),
    offset: Number(header(h, natsHeaders.offset)) || 0,
    count: Number(header(h, natsHeaders.count)) || 1,
    time,
    historySize: size || 0,
    historyTtlMs: ttl || 0,
    prevSeq: Number(header(h, natsHeaders.prev)) || 0,
    payload,
    metadata: metadataFromText(header(h, natsHeaders.metadata)),
  };
}

function fromStoredMsg(m: StoredMsg): StoredEvent {
  return decode(m.seq, m.header, m.time.getTime(), m.data.slice());
}

function fromJsMsg(m: JsMsg): StoredEvent {
  return decode(m.info.streamSequence, m.headers, Math.floor(m.info.timestampNanos / 1e6), m.data.slice());
}
