import type { FanClientArgs, FanClientCommand, FanClientReport, Peer } from "../lib/messages.js";
import type { BroadcastSize } from "../lib/plan.js";
import type { Sample } from "../lib/report.js";
import { sleep, withServerAndClient, type RunContext, type Scenario } from "./context.js";

/**
 * Broadcast fan-out: `clients` connections in one channel, `messages` published by the server
 * in bursts of plan.batch per event-loop turn, as fast as the server goes.
 *   deliveries/s   = clients × messages ÷ (last event at the last client − first publish);
 *   last-message   = last event at the last client − publish of the last message;
 *   server CPU     = user + system time of the server process over the burst ÷ deliveries.
 * With `deflate` (permessage-deflate on, a ~2 KB JSON update per message) also
 *   bytes/delivery = bytes the clients read from their sockets over the burst ÷ deliveries.
 */
export function broadcastScenario(id: string, size: (ctx: RunContext) => BroadcastSize, reliable: boolean, deflate = false): Scenario {
  return {
    id,
    run(peer: Peer, ctx: RunContext): Promise<Sample[]> {
      const { clients, messages } = size(ctx);
      const { plan } = ctx;
      const args: FanClientArgs = { peer, clients, subscribe: true, reliable, warm: 0, sources: plan.sources, concurrency: plan.concurrency, deflate };
      return withServerAndClient<FanClientReport, FanClientCommand, Sample[]>(
        ctx,
        peer,
        id,
        reliable ? "reliable" : deflate ? "deflate" : "broadcast",
        { file: "peers/fan-client.ts", args },
        async (server, client) => {
          const t0 = Date.now();
          await client.next("ready", 30_000 + clients * 20);
          const connectMs = Date.now() - t0;
          await sleep(200);
          const limitMs = 20_000 + clients * messages * 0.1;
          client.send({ type: "expect", messages, timeoutMs: limitMs });
          server.send({ type: "burst", messages, batch: plan.batch });
          const burst = await server.next("burst-done", limitMs + 5000);
          const done = await client.next("done", limitMs + 5000);
          server.send({ type: "cpu" });
          const { cpuUs } = await server.next("cpu", 10_000);
          if (!done.complete) {
            throw new Error(`${done.received} of ${done.expected} events arrived within ${Math.round(limitMs)} ms`);
          }
          const seconds = (done.lastNs - burst.startNs) / 1e9;
          ctx.log(`    ${clients} connections in ${connectMs} ms; burst ${(seconds * 1000).toFixed(0)} ms; client process CPU ${done.clientCpuPercent.toFixed(0)}%`);
          const deliveries = clients * messages;
          const samples: Sample[] = [
            { metric: id, peer, value: deliveries / seconds },
            { metric: `${id}:last-message-ms`, peer, value: Math.max(0, done.lastNs - burst.lastPublishNs) / 1e6 },
            { metric: `${id}:server-cpu-us-per-delivery`, peer, value: cpuUs / deliveries },
          ];
          if (deflate) {
            const wire = done.bytesRead / deliveries;
            ctx.log(`    ${wire.toFixed(0)} B read per delivery; events inflate to ${(done.inflatedBytes / deliveries).toFixed(0)} B; ${done.inflations} zlib inflations`);
            samples.push({ metric: `${id}:bytes-per-delivery`, peer, value: wire });
          }
          return samples;
        },
      );
    },
  };
}
