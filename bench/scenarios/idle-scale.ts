import type { FanClientArgs, FanClientCommand, FanClientReport, Memory, Peer, ServerArgs, ServerCommand, ServerReport } from "../lib/messages.js";
import { scalePlans } from "../lib/plan-scale.js";
import { startWorker, type Worker } from "../lib/proc.js";
import type { Sample } from "../lib/report.js";
import { sleep, type RunContext, type Scenario } from "./context.js";

export const IDLE_SCALE_ID = "idle-18k";

/**
 * Idle connections at scale: 18,000 (scale plan) authenticated connections to one server
 * process, handshake done as in idle-memory-per-conn, opened by several client processes (one
 * process may hold at most 20,000 open files here, the server needs 18,000 of them). Each
 * connection carries its own credential, which the server checks and keeps the user of
 * (Protocast: an `authenticate` hook returning a principal; ws: verifyClient; Socket.IO: a
 * middleware setting socket.data; see bench-token.ts). The server's memory is read
 * after forced GCs at the baseline (the first `warm` connections) and after each client
 * process has opened its share:
 *   idle-18k           = (RSS at all − RSS at warm) ÷ the connections between (bytes each);
 *   :rss-total         = RSS of the server process holding all of them;
 *   :upper-half-slope  = the same slope between the reading nearest half and the last one, to
 *                        show whether the cost per connection stays flat as the count grows;
 *   :heap              = the slope of heapUsed.
 * Runs in full runs, and in the other modes only when --only names it.
 */
export const idleScale: Scenario & { readonly fullOnly: true } = {
  id: IDLE_SCALE_ID,
  fullOnly: true,
  async run(peer: Peer, ctx: RunContext): Promise<Sample[]> {
    const { plan, placement } = ctx;
    const { clients, warm, processes } = scalePlans[plan.mode].idle18k;
    const shares = Array.from({ length: processes }, (_, i) => Math.floor(clients / processes) + (i < clients % processes ? 1 : 0));
    const serverArgs: ServerArgs = { mode: "idle", payloadBytes: plan.payloadBytes, authenticate: true };
    const server = startWorker<ServerReport, ServerCommand>(`${peer} server`, {
      file: `peers/${peer}-server.ts`,
      args: serverArgs,
      cpu: placement.serverCpu,
      taskset: placement.taskset,
      nodeFlags: ["--expose-gc"],
    });
    const workers: Worker<FanClientReport, FanClientCommand>[] = shares.map((share, i) => {
      const args: FanClientArgs = {
        peer,
        clients: share,
        subscribe: false,
        reliable: false,
        warm: i === 0 ? Math.min(warm, share) : 0,
        sources: plan.sources,
        concurrency: plan.concurrency,
        tokenFrom: shares.slice(0, i).reduce((a, b) => a + b, 0),
      };
      return startWorker<FanClientReport, FanClientCommand>(`${peer} client ${i + 1}/${processes}`, {
        file: "peers/fan-client.ts",
        args,
        cpu: placement.clientCpu,
        taskset: placement.taskset,
      });
    });
    const readings: { connections: number; memory: Memory }[] = [];
    const read = async (expected: number): Promise<void> => {
      await sleep(300);
      server.send({ type: "memory" });
      const m = await server.next("memory", 30_000);
      if (m.connections !== expected) throw new Error(`the server holds ${m.connections} connections; expected ${expected}`);
      readings.push({ connections: m.connections, memory: m.memory });
    };
    try {
      const { port } = await server.next("ready", 30_000);
      const t0 = Date.now();
      let open = 0;
      for (let i = 0; i < processes; i++) {
        const w = workers[i]!;
        w.send({ type: "connect", port });
        if (i === 0 && warm < shares[0]!) {
          open += (await w.next("warm", 60_000)).connected;
          await read(open);
          w.send({ type: "continue" });
          open += (await w.next("ready", 60_000 + shares[0]! * 10)).connected - warm;
        } else {
          open += (await w.next("ready", 60_000 + shares[i]! * 10)).connected;
        }
        await read(open);
      }
      const connectMs = Date.now() - t0;
      const base = readings[0]!;
      const last = readings[readings.length - 1]!;
      const mid = readings.reduce((best, r) => (Math.abs(r.connections - clients / 2) < Math.abs(best.connections - clients / 2) ? r : best), base);
      const slope = (a: typeof base, b: typeof base, key: keyof Memory): number => (b.memory[key] - a.memory[key]) / (b.connections - a.connections);
      ctx.log(
        `    ${last.connections} connections in ${connectMs} ms over ${processes} client processes; RSS ` +
          readings.map((r) => `${r.connections}: ${(r.memory.rss / 2 ** 20).toFixed(1)} MiB`).join(", "),
      );
      return [
        { metric: IDLE_SCALE_ID, peer, value: slope(base, last, "rss") },
        { metric: `${IDLE_SCALE_ID}:rss-total`, peer, value: last.memory.rss },
        { metric: `${IDLE_SCALE_ID}:upper-half-slope`, peer, value: slope(mid === last ? base : mid, last, "rss") },
        { metric: `${IDLE_SCALE_ID}:heap`, peer, value: slope(base, last, "heapUsed") },
      ];
    } finally {
      // Clients first: a client that sees its server vanish treats it as a failure.
      await Promise.all(workers.map((w) => w.stop()));
      await server.stop();
    }
  },
};
