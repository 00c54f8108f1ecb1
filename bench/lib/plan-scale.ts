/**
 * Workload sizes of the scale scenarios (idle-18k, cross-node-4), per run mode; the rest of a
 * run's sizes are in plan.ts.
 *
 * idle-18k runs in full runs, and in the other modes only when --only names it. A process here
 * may hold at most 20,000 open files, so the server holds all the connections and the clients
 * are spread over several processes, each far below that limit.
 */
import type { CrossNodeSize, Mode } from "./plan.js";

export interface IdleScaleSize {
  /** Connections the server holds at the end. */
  readonly clients: number;
  /** Connections open when the baseline is taken (the first client process's first ones). */
  readonly warm: number;
  /** Client processes the connections are spread over, evenly; one memory reading after each. */
  readonly processes: number;
}

export interface CrossNodeScaleSize extends CrossNodeSize {
  /** Server processes on the broker; node 1 publishes, the subscribers are spread over all. */
  readonly nodes: number;
}

export interface ScalePlan {
  readonly idle18k: IdleScaleSize;
  readonly crossNode4: CrossNodeScaleSize;
}

export const scalePlans: Readonly<Record<Mode, ScalePlan>> = {
  full: {
    idle18k: { clients: 18_000, warm: 500, processes: 4 },
    crossNode4: { nodes: 4, clients: 2000, latencyClients: 100, messages: 250, paced: 100, intervalMs: 25, warmup: 20 },
  },
  quick: {
    idle18k: { clients: 18_000, warm: 500, processes: 4 },
    crossNode4: { nodes: 4, clients: 1000, latencyClients: 100, messages: 100, paced: 40, intervalMs: 25, warmup: 20 },
  },
  smoke: {
    idle18k: { clients: 1200, warm: 200, processes: 2 },
    crossNode4: { nodes: 4, clients: 100, latencyClients: 100, messages: 50, paced: 20, intervalMs: 25, warmup: 10 },
  },
};

/**
 * Sockets the busiest process of each selected scale scenario holds: the idle-18k server (all
 * its connections; each client process holds a share), the cross-node-4 client process.
 */
export function scaleSockets(mode: Mode, selected: readonly string[]): number[] {
  const p = scalePlans[mode];
  return [...(selected.includes("idle-18k") ? [p.idle18k.clients] : []), ...(selected.includes("cross-node-4") ? [p.crossNode4.clients] : [])];
}
