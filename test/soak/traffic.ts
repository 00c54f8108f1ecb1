import { Code, ProtocastError, connect, createClient, type Connection, type ConnectOptions } from "protocast/node";
import { ChatService } from "../../generated/acme/chat/v1/chat_protocast.js";

/** One subscriber of a room: what it received, the gaps it was told of, its reconnect times. */
export interface Reader {
  readonly room: string;
  readonly conn: Connection;
  readonly got: string[];
  gaps: number;
  readonly reconnectMs: number[];
}

/** Records how long each reconnect took, from losing the connection to open again. */
export function timeReconnects(conn: Connection, into: number[]): void {
  let since = 0;
  conn.on("state", (s) => {
    if (s.newState === "reconnecting" && since === 0) since = Date.now();
    if (s.newState === "open" && since > 0) {
      into.push(Date.now() - since);
      since = 0;
    }
  });
}

export async function startReader(url: string, token: string, room: string, options: ConnectOptions = {}): Promise<Reader> {
  const conn = connect(url, { ...options, token });
  const reader: Reader = { room, conn, got: [], gaps: 0, reconnectMs: [] };
  timeReconnects(conn, reader.reconnectMs);
  const sub = createClient(ChatService, conn).roomEvents({ roomId: room });
  sub.on("gap", () => reader.gaps++);
  await sub.ready;
  void (async () => {
    for await (const ev of sub) reader.got.push(ev.text);
  })().catch(() => undefined);
  return reader;
}

/**
 * Sends `text` to `room` exactly once: a failed attempt is sent again with the same
 * idempotency key, on `conn` or on what `reopen` gives when `conn` is closed for good.
 */
export async function sendOnce(conn: () => Connection, room: string, text: string, stop: () => boolean): Promise<boolean> {
  const key = `soak-${text}`;
  for (;;) {
    try {
      await createClient(ChatService, conn()).sendMessage({ roomId: room, text }, { timeoutMs: 5_000, idempotencyKey: key });
      return true;
    } catch (e) {
      if (stop() && !(e instanceof ProtocastError && e.code === Code.DeadlineExceeded)) return false;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** Sends numbered messages round the rooms, one at a time, until `stop`; records what was acknowledged. */
export async function publishUntil(conn: Connection, tag: string, rooms: readonly string[], everyMs: number, stop: () => boolean, acked: Map<string, string[]>): Promise<void> {
  for (let n = 0; !stop(); n++) {
    const room = rooms[n % rooms.length]!;
    const text = `${tag}-${n}`;
    if (await sendOnce(() => conn, room, text, stop)) acked.get(room)!.push(text);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export interface Delivery {
  readonly deliveries: number;
  readonly duplicates: number;
  /** Acknowledged messages a reader never got. */
  readonly missing: number;
  /** Gaps the readers were told of; a missing message without one is an unreported loss. */
  readonly reportedGaps: number;
  /** Messages of one sender that came before an earlier one. */
  readonly outOfOrder: number;
}

/** Every reader of a room against what was acknowledged for it. */
export function tally(readers: readonly Reader[], acked: ReadonlyMap<string, readonly string[]>): Delivery {
  let deliveries = 0;
  let duplicates = 0;
  let missing = 0;
  let reportedGaps = 0;
  let outOfOrder = 0;
  for (const r of readers) {
    deliveries += r.got.length;
    reportedGaps += r.gaps;
    const seen = new Set<string>();
    const lastOf = new Map<string, number>();
    for (const text of r.got) {
      if (seen.has(text)) duplicates++;
      seen.add(text);
      const dash = text.lastIndexOf("-");
      const sender = text.slice(0, dash);
      const n = Number(text.slice(dash + 1));
      if ((lastOf.get(sender) ?? -1) > n) outOfOrder++;
      lastOf.set(sender, n);
    }
    for (const text of acked.get(r.room) ?? []) if (!seen.has(text)) missing++;
  }
  return { deliveries, duplicates, missing, reportedGaps, outOfOrder };
}

/** Median and 99th percentile (nearest rank); NaN when empty. */
export function p50p99(values: readonly number[]): { p50: number; p99: number } {
  if (values.length === 0) return { p50: NaN, p99: NaN };
  const s = [...values].sort((a, b) => a - b);
  const at = (p: number): number => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]!;
  return { p50: at(0.5), p99: at(0.99) };
}
