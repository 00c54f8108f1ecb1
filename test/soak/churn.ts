import { connect, type Connection } from "protocast/node";
import { startTcpProxy } from "../support/tcp-proxy.js";
import { startSoakServer } from "./soak-server.js";
import { p50p99, publishUntil, sendOnce, startReader, tally, timeReconnects, type Delivery, type Reader } from "./traffic.js";

interface Counts {
  readonly connections: number;
  readonly sessions: number;
  readonly channels: number;
  /** Idempotency records of the embedded store (0 with a shared one). */
  readonly records: number;
}

export interface ChurnFigures extends Delivery {
  readonly churnedClients: number;
  readonly churnCalls: number;
  readonly cuts: number;
  readonly reconnects: number;
  readonly reconnectP50: number;
  readonly reconnectP99: number;
  /** Server stats and heap, before and after (all clients gone, grace period over). */
  readonly before: Counts & { heapMb: number };
  readonly after: Counts & { heapMb: number };
}

const ROOMS = ["soak-a", "soak-b", "soak-c", "soak-d"];
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const heapMb = (): number => {
  (globalThis as { gc?: () => void }).gc?.();
  return Math.round((process.memoryUsage().heapUsed / 2 ** 20) * 10) / 10;
};

/**
 * Steady readers (their links cut every 1-3 s), one steady publisher, and a crowd of
 * short-lived clients that connect, subscribe, make exactly-once calls and vanish — half of
 * them closing, half cut off without a word — for `seconds`.
 */
export async function runChurn(seconds: number, brokerUrl: string | undefined): Promise<ChurnFigures> {
  const run = `${Date.now().toString(36)}`;
  const rooms = ROOMS.map((r) => `${r}-${run}`);
  const { server, port, close } = await startSoakServer("127.0.0.1", brokerUrl);
  const stats = (): Counts => {
    const s = server.stats();
    return { connections: s.connections, sessions: s.sessions, channels: s.channels, records: s.idempotencyRecords };
  };
  const leftovers = (): boolean => Object.values(stats()).some((n) => n > 0);
  const before = { ...stats(), heapMb: heapMb() };
  const readerLink = await startTcpProxy(port);
  const churnLink = await startTcpProxy(port);
  const url = (p: number): string => `ws://127.0.0.1:${p}/protocast`;
  const acked = new Map(rooms.map((r) => [r, [] as string[]]));
  const readers: Reader[] = [];
  for (let i = 0; i < 16; i++) readers.push(await startReader(url(readerLink.port), `reader${i}`, rooms[i % rooms.length]!));
  const publisher = connect(url(port), { token: "publisher" });
  let stop = false;
  const end = Date.now() + seconds * 1_000;
  const publishing = publishUntil(publisher, "p", rooms, 5, () => stop, acked);

  let cuts = 0;
  const cutting = (async () => {
    while (!stop) {
      await sleep(1_000 + Math.random() * 2_000);
      if (stop) break;
      readerLink.cut();
      cuts++;
    }
  })();
  const churnReconnects: number[] = [];
  let churned = 0;
  let churnCalls = 0;
  const churner = async (id: number): Promise<void> => {
    for (let round = 0; !stop; round++) {
      const name = `c${id}r${round}`;
      const room = rooms[(id + round) % rooms.length]!;
      let conn: Connection = connect(url(churnLink.port), { token: `churn${id}`, reconnect: { baseMs: 50, capMs: 500 } });
      timeReconnects(conn, churnReconnects);
      const reader = await startReader(url(churnLink.port), `churnreader${id}`, room, { reconnect: false }).catch(() => undefined);
      for (let k = 0; k < 3 && !stop; k++) {
        if (await sendOnce(() => conn, room, `${name}-${k}`, () => stop)) {
          acked.get(room)!.push(`${name}-${k}`);
          churnCalls++;
        }
      }
      churned += 2;
      if (Math.random() < 0.5) {
        await conn.close();
        await reader?.conn.close();
      } else {
        // Abruptly: every churner's link is cut, and these never come back.
        churnLink.cut();
        await sleep(20);
        await conn.close();
        await reader?.conn.close();
      }
      conn = undefined as unknown as Connection;
    }
  };
  const churning = Array.from({ length: 12 }, (_, i) => churner(i));
  while (Date.now() < end) await sleep(100);
  stop = true;
  await Promise.all([publishing, cutting, ...churning]);

  // Every reader catches up with what was acknowledged for its room, or the wait ends.
  const caughtUp = (): boolean => readers.every((r) => (acked.get(r.room) ?? []).every((t) => r.got.includes(t)));
  for (const t = Date.now() + 15_000; !caughtUp() && Date.now() < t; ) await sleep(100);
  const delivery = tally(readers, acked);
  const reconnectMs = readers.flatMap((r) => r.reconnectMs).concat(churnReconnects);
  await Promise.all([...readers.map((r) => r.conn.close()), publisher.close()]);
  await readerLink.close();
  await churnLink.close();
  // Sessions cut off for good end with their grace period (3 s here), records after 5 s.
  for (const t = Date.now() + 10_000; leftovers() && Date.now() < t; ) await sleep(100);
  await sleep(200);
  const after = { ...stats(), heapMb: heapMb() };
  await close();
  const { p50, p99 } = p50p99(reconnectMs);
  return { ...delivery, churnedClients: churned, churnCalls, cuts, reconnects: reconnectMs.length, reconnectP50: p50, reconnectP99: p99, before, after };
}
