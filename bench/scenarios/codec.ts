import { PEERS, type CodecReport, type Peer } from "../lib/messages.js";
import { startWorker } from "../lib/proc.js";
import type { Sample } from "../lib/report.js";
import type { RunContext, Scenario } from "./context.js";

/**
 * Envelope encode+decode ops/s (see codec-worker.ts). All three codecs run in one process per
 * round, on the server's CPU, in the order the round gives; the harness asks for the
 * "protocast" peer and records the other two from the same process.
 */
export const codec: Scenario & { readonly allPeersAtOnce: true } = {
  id: "codec",
  allPeersAtOnce: true,
  async run(_peer: Peer, ctx: RunContext): Promise<Sample[]> {
    const order = PEERS.map((_, i) => PEERS[(i + ctx.round) % PEERS.length]!);
    const worker = startWorker<CodecReport, { type: "stop" }>("codec", {
      file: "scenarios/codec-worker.ts",
      args: { minMs: ctx.plan.codecMs, order },
      cpu: ctx.placement.serverCpu,
      taskset: ctx.placement.taskset,
    });
    try {
      const r = await worker.next("result", 30_000 + ctx.plan.codecMs * 10);
      return PEERS.map((peer) => ({ metric: "codec", peer, value: r.opsPerSecond[peer] }));
    } finally {
      await worker.stop();
    }
  },
};
