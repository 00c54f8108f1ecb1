import { PEERS, type CodecReport, type Peer } from "../lib/messages.js";
import { startWorker } from "../lib/proc.js";
import type { Sample } from "../lib/report.js";
import type { RunContext, Scenario } from "./context.js";

/**
 * A codec scenario: encode+decode ops/s of the three codecs of `file` (a worker module). All
 * three run in one process per round, on the server's CPU, in the order the round gives; the
 * harness asks for the "protocast" peer and records the other two from the same process.
 */
function codecScenario(id: string, file: string): Scenario & { readonly allPeersAtOnce: true } {
  return {
    id,
    allPeersAtOnce: true,
    async run(_peer: Peer, ctx: RunContext): Promise<Sample[]> {
      const order = PEERS.map((_, i) => PEERS[(i + ctx.round) % PEERS.length]!);
      const worker = startWorker<CodecReport, { type: "stop" }>(id, {
        file,
        args: { minMs: ctx.plan.codecMs, order, payloadBytes: ctx.plan.payloadBytes },
        cpu: ctx.placement.serverCpu,
        taskset: ctx.placement.taskset,
      });
      try {
        const r = await worker.next("result", 30_000 + ctx.plan.codecMs * 10);
        return PEERS.map((peer) => ({ metric: id, peer, value: r.opsPerSecond[peer] }));
      } finally {
        await worker.stop();
      }
    },
  };
}

/** The envelope of a call (codec-worker.ts). */
export const codec = codecScenario("codec", "scenarios/codec-worker.ts");

/** The bench service's Echo request and response, the user payloads of a call (payload-codec-worker.ts). */
export const payloadCodec = codecScenario("payload-codec", "scenarios/payload-codec-worker.ts");
