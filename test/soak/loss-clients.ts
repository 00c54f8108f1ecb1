// Run by packet-loss.ts inside the lossy network namespace:
//   node --import tsx test/soak/loss-clients.ts <ws url> <room,room,...> <readers>
// Starts the readers, prints "ready", and cuts all its connections (ss -K) every 2 s until a
// line of JSON arrives on stdin: { acked: { room: [texts] } }. Then it waits for the readers
// to catch up (at most 20 s) and prints one line of JSON: the tally and the reconnect times.
import { spawnSync } from "node:child_process";
import { createInterface } from "node:readline";
import { startReader, tally, type Reader } from "./traffic.js";

const [url, roomList, count] = process.argv.slice(2) as [string, string, string];
const rooms = roomList.split(",");
const host = new URL(url).hostname;
const readers: Reader[] = await Promise.all(Array.from({ length: Number(count) }, (_, i) => startReader(url, `lossy${i}`, rooms[i % rooms.length]!)));
console.log("ready");
let cutting = true;
const cuts = (async () => {
  let n = 0;
  while (cutting) {
    await new Promise((r) => setTimeout(r, 2_000));
    if (!cutting) break;
    spawnSync("ss", ["-K", "-t", "dst", host]);
    n++;
  }
  return n;
})();
const line = await new Promise<string>((resolve) => createInterface({ input: process.stdin }).once("line", resolve));
cutting = false;
const acked = new Map(Object.entries((JSON.parse(line) as { acked: Record<string, string[]> }).acked));
const caughtUp = (): boolean => readers.every((r) => (acked.get(r.room) ?? []).every((t) => r.got.includes(t)));
for (const end = Date.now() + 20_000; !caughtUp() && Date.now() < end; ) await new Promise((r) => setTimeout(r, 100));
console.log(JSON.stringify({ ...tally(readers, acked), cuts: await cuts, reconnectMs: readers.flatMap((r) => r.reconnectMs) }));
await Promise.all(readers.map((r) => r.conn.close()));
process.exit(0);
