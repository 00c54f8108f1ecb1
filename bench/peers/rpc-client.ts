/**
 * Client process of the RPC scenario: one connection; sequential calls timed one by one,
 * then calls pipelined with a fixed number in flight.
 */
import { nowNs, type ConnectCommand, type RpcClientArgs, type RpcClientReport } from "../lib/messages.js";
import { onCommand, report, workerArgs } from "../lib/proc.js";
import { CpuProfiler } from "../lib/profiler.js";
import { percentile } from "../lib/stats.js";
import { rpcClients, type RpcConnection } from "./rpc-clients.js";

const args = workerArgs<RpcClientArgs>();

async function sequential(rpc: RpcConnection, calls: number, maxMs: number): Promise<number[]> {
  const latencies: number[] = [];
  const stopAt = nowNs() + maxMs * 1e6;
  for (let i = 0; i < calls; i++) {
    const t0 = nowNs();
    await rpc.call();
    const t1 = nowNs();
    latencies.push((t1 - t0) / 1000);
    if (t1 > stopAt) break;
  }
  return latencies;
}

/** Keeps `inflight` calls under way until `calls` have finished or time is up. */
function pipelined(rpc: RpcConnection, calls: number, inflight: number, maxMs: number): Promise<{ done: number; seconds: number }> {
  return new Promise((resolve, reject) => {
    const t0 = nowNs();
    const stopAt = t0 + maxMs * 1e6;
    let started = 0;
    let done = 0;
    const launch = (): void => {
      started++;
      rpc.call().then(finished, reject);
    };
    const finished = (): void => {
      done++;
      if (started < calls && nowNs() < stopAt) launch();
      else if (done === started) resolve({ done, seconds: (nowNs() - t0) / 1e9 });
    };
    for (let i = 0; i < Math.min(inflight, calls); i++) launch();
  });
}

let rpc: RpcConnection | undefined;
const port = await new Promise<number>((resolve) => {
  onCommand<ConnectCommand>(
    (command) => resolve(command.port),
    () => rpc?.close() ?? Promise.resolve(),
  );
});
rpc = await rpcClients[args.peer](port, args.payloadBytes);
// Warm-up: let the JIT settle on both sides before anything is timed.
await pipelined(rpc, args.warmupCalls, args.inflight, args.maxMs);
const profiler = args.profile === undefined ? undefined : new CpuProfiler(args.profile);
await profiler?.start();
const latencies = await sequential(rpc, args.sequentialCalls, args.maxMs);
const piped = await pipelined(rpc, args.pipelinedCalls, args.inflight, args.maxMs);
await profiler?.stop();
const result: RpcClientReport = {
  type: "result",
  p50Us: percentile(latencies, 0.5),
  p99Us: percentile(latencies, 0.99),
  sequentialCalls: latencies.length,
  callsPerSecond: piped.done / piped.seconds,
  pipelinedCalls: piped.done,
};
report(result);
