/**
 * Messages between the orchestrator (bench/run.ts) and its worker processes, over the Node IPC
 * channel. Times are CLOCK_MONOTONIC nanoseconds (process.hrtime.bigint() as a number), which
 * every process on the machine shares, so a server timestamp and a client timestamp compare.
 */

export type Peer = "protocast" | "ws" | "socketio";
export const PEERS: readonly Peer[] = ["protocast", "ws", "socketio"];

/**
 * What a server process is set up for. "deflate": the broadcast with permessage-deflate on and
 * a ~2 KB JSON market update per message (lib/market-update.ts) instead of payloadBytes.
 */
export type ServerMode = "broadcast" | "reliable" | "deflate" | "rpc" | "idle";

export interface ServerArgs {
  readonly mode: ServerMode;
  /** Bytes of application payload per broadcast message. */
  readonly payloadBytes: number;
  /**
   * Write a CPU profile of the measured part to this file: the burst (broadcast modes) or the
   * whole life of the server (rpc, idle).
   */
  readonly profile?: string;
  /** Protocast only: keep sessions in this store (bench --session-store). */
  readonly sessionStore?: "redis";
  /** Accept only connections with a bench credential (bench-token.ts); default: no check. */
  readonly authenticate?: boolean;
}

export interface Memory {
  readonly rss: number;
  readonly heapUsed: number;
}

export type ServerCommand =
  | { readonly type: "burst"; readonly messages: number; readonly batch: number }
  | { readonly type: "cpu" }
  | { readonly type: "memory" }
  | { readonly type: "stop" };

export type ServerReport =
  | { readonly type: "ready"; readonly port: number }
  | { readonly type: "burst-done"; readonly startNs: number; readonly lastPublishNs: number }
  | { readonly type: "cpu"; readonly cpuUs: number }
  | { readonly type: "memory"; readonly memory: Memory; readonly connections: number };

/** Arguments of the client process that holds many connections (broadcast and idle). */
/** Client processes start together with the server and learn its port from this command. */
export interface ConnectCommand {
  readonly type: "connect";
  readonly port: number;
}

export interface FanClientArgs {
  readonly peer: Peer;
  readonly clients: number;
  /** Subscribe to the broadcast channel (false: connect and stay idle). */
  readonly subscribe: boolean;
  /** Send acknowledgements, as an at-least-once receiver does. */
  readonly reliable: boolean;
  /** Connections opened first; the client then waits for "continue" (0: no pause). */
  readonly warm: number;
  /** Loopback source addresses to spread connections over (127.0.0.1 ... 127.0.0.N). */
  readonly sources: number;
  /** Connections being opened at the same time. */
  readonly concurrency: number;
  /** Send a bench credential (bench-token.ts) numbered from this value; undefined: none. */
  readonly tokenFrom?: number;
  /** Offer permessage-deflate, require it, and inflate what arrives compressed. */
  readonly deflate?: boolean;
}

export type FanClientCommand =
  | ConnectCommand
  | { readonly type: "continue" }
  | { readonly type: "expect"; readonly messages: number; readonly timeoutMs: number }
  | { readonly type: "stop" };

export type FanClientReport =
  | { readonly type: "warm"; readonly connected: number }
  | { readonly type: "ready"; readonly connected: number }
  /** complete: every connection has every expected event; otherwise the time limit passed. */
  | {
      readonly type: "done";
      readonly complete: boolean;
      readonly lastNs: number;
      readonly received: number;
      readonly expected: number;
      readonly minPerClient: number;
      readonly clientCpuPercent: number;
      /** Bytes read from all sockets since "expect": frames as they crossed the wire. */
      readonly bytesRead: number;
      /** Bytes of the compressed events since "expect", once inflated. */
      readonly inflatedBytes: number;
      /** Compressed messages that went through zlib since "expect" (see lib/inflate.ts). */
      readonly inflations: number;
    };

export interface RpcClientArgs {
  readonly peer: Peer;
  readonly payloadBytes: number;
  readonly warmupCalls: number;
  readonly sequentialCalls: number;
  readonly pipelinedCalls: number;
  readonly inflight: number;
  /** Upper bound of each measuring loop, whatever the call counts. */
  readonly maxMs: number;
  /** Write a CPU profile of the measured calls (warm-up excluded) to this file. */
  readonly profile?: string;
}

export type RpcClientReport = {
  readonly type: "result";
  readonly p50Us: number;
  readonly p99Us: number;
  readonly sequentialCalls: number;
  readonly callsPerSecond: number;
  readonly pipelinedCalls: number;
};

export interface CodecArgs {
  readonly minMs: number;
  readonly order: readonly Peer[];
}

export type CodecReport = {
  readonly type: "result";
  readonly bytes: Readonly<Record<Peer, number>>;
  readonly opsPerSecond: Readonly<Record<Peer, number>>;
};

/** Monotonic time in nanoseconds, comparable across processes of one machine. */
export function nowNs(): number {
  return Number(process.hrtime.bigint());
}
