/**
 * Workload sizes of each run mode. Every loop in the harness is bounded by these counts and by
 * the time limits next to them.
 *
 * full:  what bench/results/latest.json and the README table come from (~10 minutes).
 * quick: the same scenarios with smaller counts and 2 rounds (about 1 minute on an idle
 *        machine, under 3 minutes with other work running on both cores).
 * smoke: proves that the harness works end to end (seconds); its numbers mean nothing.
 */
export type Mode = "full" | "quick" | "smoke";

export interface BroadcastSize {
  readonly clients: number;
  /** Messages per round; every client receives all of them. */
  readonly messages: number;
}

/** Cross-node fan-out: subscribers on node B, a publisher on node A. */
export interface CrossNodeSize {
  readonly clients: number;
  /** Connections that time their events in the latency phase (see cross-node-client.ts). */
  readonly latencyClients: number;
  /** Messages of the throughput burst. */
  readonly messages: number;
  /** Messages published one every intervalMs for latency, after `warmup` unmeasured ones. */
  readonly paced: number;
  readonly intervalMs: number;
  readonly warmup: number;
}

export interface Plan {
  readonly mode: Mode;
  readonly rounds: number;
  /** Application payload of a broadcast message or RPC request, in bytes. */
  readonly payloadBytes: number;
  /** Messages published per event-loop turn during a burst. */
  readonly batch: number;
  readonly broadcast1000: BroadcastSize;
  readonly broadcast5000: BroadcastSize;
  readonly reliable1000: BroadcastSize;
  /** broadcast-1000-deflate: a ~2 KB JSON update per message, permessage-deflate on. */
  readonly deflate1000: BroadcastSize;
  readonly rpc: {
    readonly warmupCalls: number;
    readonly sequentialCalls: number;
    readonly pipelinedCalls: number;
    readonly inflight: number;
    readonly maxMs: number;
  };
  readonly idle: { readonly clients: number; readonly warm: number };
  readonly crossNode: CrossNodeSize;
  readonly codecMs: number;
  /** Loopback source addresses the clients spread over. */
  readonly sources: number;
  /** Connection handshakes under way at once, per client process. */
  readonly concurrency: number;
}

const common = { payloadBytes: 100, batch: 16, sources: 8, concurrency: 64 } as const;

export const plans: Readonly<Record<Mode, Plan>> = {
  full: {
    ...common,
    mode: "full",
    rounds: 5,
    broadcast1000: { clients: 1000, messages: 500 },
    broadcast5000: { clients: 5000, messages: 100 },
    reliable1000: { clients: 1000, messages: 500 },
    deflate1000: { clients: 1000, messages: 200 },
    rpc: { warmupCalls: 5000, sequentialCalls: 5000, pipelinedCalls: 60_000, inflight: 64, maxMs: 10_000 },
    idle: { clients: 10_000, warm: 500 },
    crossNode: { clients: 1000, latencyClients: 50, messages: 500, paced: 100, intervalMs: 25, warmup: 20 },
    codecMs: 1000,
  },
  quick: {
    ...common,
    mode: "quick",
    rounds: 2,
    broadcast1000: { clients: 1000, messages: 60 },
    broadcast5000: { clients: 5000, messages: 12 },
    reliable1000: { clients: 1000, messages: 60 },
    deflate1000: { clients: 1000, messages: 60 },
    rpc: { warmupCalls: 1000, sequentialCalls: 1000, pipelinedCalls: 8000, inflight: 64, maxMs: 4000 },
    idle: { clients: 3000, warm: 300 },
    crossNode: { clients: 500, latencyClients: 50, messages: 100, paced: 40, intervalMs: 25, warmup: 20 },
    codecMs: 150,
  },
  smoke: {
    ...common,
    mode: "smoke",
    rounds: 1,
    broadcast1000: { clients: 50, messages: 200 },
    broadcast5000: { clients: 50, messages: 200 },
    reliable1000: { clients: 50, messages: 200 },
    deflate1000: { clients: 50, messages: 50 },
    rpc: { warmupCalls: 100, sequentialCalls: 200, pipelinedCalls: 500, inflight: 64, maxMs: 5000 },
    idle: { clients: 1000, warm: 100 },
    crossNode: { clients: 50, latencyClients: 50, messages: 100, paced: 20, intervalMs: 25, warmup: 10 },
    codecMs: 50,
  },
};
