import type { FanClientArgs, FanClientCommand, FanClientReport, Peer } from "../lib/messages.js";
import type { Sample } from "../lib/report.js";
import { sleep, withServerAndClient, type RunContext, type Scenario } from "./context.js";

const ID = "idle-memory-per-conn";

/**
 * Server memory per idle connection: handshake done (Protocast: Hello/Welcome; Socket.IO:
 * namespace joined), nothing subscribed. Measured between `warm` connections and all of them,
 * after forced GCs, so that code loaded by the first connections is not counted.
 */
export const idleMemory: Scenario = {
  id: ID,
  run(peer: Peer, ctx: RunContext): Promise<Sample[]> {
    const { plan } = ctx;
    const { clients, warm } = plan.idle;
    const args: FanClientArgs = { peer, clients, subscribe: false, reliable: false, warm, sources: plan.sources, concurrency: plan.concurrency };
    return withServerAndClient<FanClientReport, FanClientCommand, Sample[]>(
      ctx,
      peer,
      ID,
      "idle",
      { file: "peers/fan-client.ts", args },
      async (server, client) => {
        await client.next("warm", 30_000);
        server.send({ type: "memory" });
        const before = await server.next("memory", 10_000);
        const t0 = Date.now();
        client.send({ type: "continue" });
        await client.next("ready", 30_000 + clients * 10);
        const connectMs = Date.now() - t0;
        await sleep(500);
        server.send({ type: "memory" });
        const after = await server.next("memory", 10_000);
        const added = after.connections - before.connections;
        if (after.connections !== clients || added <= 0) {
          throw new Error(`the server holds ${after.connections} connections; expected ${clients}`);
        }
        ctx.log(`    ${added} connections in ${connectMs} ms; RSS ${(after.memory.rss / 2 ** 20).toFixed(1)} MiB`);
        return [
          { metric: ID, peer, value: (after.memory.rss - before.memory.rss) / added },
          { metric: `${ID}:heap`, peer, value: (after.memory.heapUsed - before.memory.heapUsed) / added },
        ];
      },
    );
  },
};
