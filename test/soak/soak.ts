// npm run soak: churn, then packet loss where the machine allows, for SOAK_SECONDS (default 30).
//   SOAK_BROKER=redis://127.0.0.1:6379 | nats://127.0.0.1:4222   shared engines (default in-process)
//   SOAK_LOSS=5,15                                                loss percentages (default 5,15; "" for none)
// Prints the figures; exits 1 on a duplicate, an unreported loss, a message out of order, or
// server counts not back to zero.
import { runChurn } from "./churn.js";
import { lossUnavailable, runLoss } from "./packet-loss.js";

const seconds = Number(process.env["SOAK_SECONDS"] ?? 30);
if (!Number.isFinite(seconds) || seconds < 1) throw new Error(`SOAK_SECONDS must be a number >= 1, got ${process.env["SOAK_SECONDS"]}`);
const broker = process.env["SOAK_BROKER"] || undefined;
const losses = (process.env["SOAK_LOSS"] ?? "5,15").split(",").filter((s) => s.trim() !== "").map(Number);
const lossSkip = losses.length === 0 ? "SOAK_LOSS is empty" : lossUnavailable();
// Churn gets the whole time when there is no loss phase, half of it otherwise.
const churnSeconds = lossSkip === undefined ? Math.max(1, Math.round(seconds / 2)) : seconds;
const ms = (n: number): string => (Number.isNaN(n) ? "-" : `${Math.round(n)} ms`);
let failed = false;
const check = (ok: boolean, what: string): void => {
  if (!ok) {
    failed = true;
    console.log(`  FAILED: ${what}`);
  }
};

console.log(`soak: ${seconds} s on ${broker ?? "the in-process broker"}`);
const c = await runChurn(churnSeconds, broker);
console.log(`churn, ${churnSeconds} s: ${c.churnedClients} short-lived clients, ${c.churnCalls} exactly-once calls from them; reader links cut ${c.cuts} times`);
console.log(`  deliveries ${c.deliveries}, duplicates ${c.duplicates}, missing ${c.missing} (reported gaps ${c.reportedGaps}), out of order ${c.outOfOrder}`);
console.log(`  reconnects ${c.reconnects}: p50 ${ms(c.reconnectP50)}, p99 ${ms(c.reconnectP99)}`);
console.log(`  server before: ${JSON.stringify(c.before)}`);
console.log(`  server after:  ${JSON.stringify(c.after)}`);
check(c.duplicates === 0, "duplicates");
check(c.outOfOrder === 0, "order");
check(c.missing === 0 || c.reportedGaps > 0, "a loss nobody was told of");
check(c.after.connections === 0 && c.after.sessions === 0 && c.after.channels === 0 && c.after.records === 0, "server counts back to zero");

if (lossSkip !== undefined) {
  console.log(`packet loss: skipped (${lossSkip})`);
} else {
  const each = Math.max(1, Math.round((seconds - churnSeconds) / losses.length));
  for (const percent of losses) {
    const l = await runLoss(percent, each, broker);
    console.log(`packet loss ${percent} % each way, ${each} s: links cut ${l.cuts} times`);
    console.log(`  deliveries ${l.deliveries}, duplicates ${l.duplicates}, missing ${l.missing} (reported gaps ${l.reportedGaps}), out of order ${l.outOfOrder}`);
    console.log(`  reconnects ${l.reconnects}: p50 ${ms(l.reconnectP50)}, p99 ${ms(l.reconnectP99)}`);
    check(l.duplicates === 0, `duplicates at ${percent} %`);
    check(l.outOfOrder === 0, `order at ${percent} %`);
    check(l.missing === 0 || l.reportedGaps > 0, `a loss nobody was told of at ${percent} %`);
  }
}
console.log(failed ? "soak: FAILED" : "soak: ok");
process.exit(failed ? 1 : 0);
