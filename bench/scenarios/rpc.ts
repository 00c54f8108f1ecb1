import type { Peer, RpcClientArgs, RpcClientReport } from "../lib/messages.js";
import type { Sample } from "../lib/report.js";
import { withServerAndClient, type RunContext, type Scenario } from "./context.js";

/**
 * Unary RPC over one connection, through each peer's own client: an echo of a 100-byte
 * payload. Sequential calls give p50/p99 latency; pipelined calls (plan.rpc.inflight in
 * flight) give calls/s.
 */
export const rpc: Scenario = {
  id: "rpc",
  run(peer: Peer, ctx: RunContext): Promise<Sample[]> {
    const { plan } = ctx;
    const args: RpcClientArgs = { peer, ...plan.rpc, payloadBytes: plan.payloadBytes };
    return withServerAndClient<RpcClientReport, { type: "stop" }, Sample[]>(ctx, peer, "rpc", "rpc", { file: "peers/rpc-client.ts", args, sameCpu: true, profiled: true }, async (_server, client) => {
      const r = await client.next("result", 20_000 + plan.rpc.maxMs * 3);
      ctx.log(`    ${r.sequentialCalls} sequential, ${r.pipelinedCalls} pipelined calls`);
      return [
        { metric: "rpc-sequential-p50", peer, value: r.p50Us },
        { metric: "rpc-sequential-p99", peer, value: r.p99Us },
        { metric: "rpc-pipelined", peer, value: r.callsPerSecond },
      ];
    });
  },
};
