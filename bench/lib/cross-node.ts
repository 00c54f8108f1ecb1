/**
 * Messages, names and payload stamps of the cross-node scenario (scenarios/cross-node.ts):
 * a publisher on node A, subscribers on node B, a broker between them.
 */
import type { ConnectCommand, Peer } from "./messages.js";

export const CROSS_NODE_ID = "cross-node-1000";
/** Four server processes on one broker, subscribers on all four, node 1 publishing. */
export const CROSS_NODE_4_ID = "cross-node-4";

export type CrossPeer = "protocast-redis" | "protocast-nats" | "protocast-single" | "socketio-redis";
export const CROSS_PEERS: readonly CrossPeer[] = ["protocast-redis", "protocast-nats", "protocast-single", "socketio-redis"];
/** The peers of cross-node-4: a single node is not a cluster of four. */
export const CROSS_4_PEERS: readonly CrossPeer[] = ["protocast-redis", "protocast-nats", "socketio-redis"];
/** What every other cross-node peer is divided by in the ÷ columns. */
export const CROSS_BASELINE: CrossPeer = "socketio-redis";

/** The wire protocol the subscribers speak (raw-dialects.ts). */
export const crossDialect = (peer: CrossPeer): Peer => (peer === "socketio-redis" ? "socketio" : "protocast");

/** publisher: node A; subscriber: node B; both: the single-node baseline. */
export type NodeRole = "publisher" | "subscriber" | "both";

/** Broker names of one run, fresh each time so that runs never see each other's state. */
export interface BrokerNames {
  readonly redisUrl: string;
  readonly natsServers: string;
  /** Protocast RedisBroker keyPrefix. */
  readonly keyPrefix: string;
  /** Protocast NatsBroker JetStream stream and subject prefix. */
  readonly stream: string;
  readonly subjectPrefix: string;
  /** @socket.io/redis-adapter key. */
  readonly sioKey: string;
}

/** The engines, as the broker tests find them (REDIS_URL, NATS_URL). */
export const REDIS_URL = process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379";
export const NATS_URL = process.env["NATS_URL"] ?? "nats://127.0.0.1:4222";

export function brokerNames(tag: string): BrokerNames {
  const id = tag.replace(/[^A-Za-z0-9]/g, "");
  return {
    redisUrl: REDIS_URL,
    natsServers: new URL(NATS_URL).host,
    keyPrefix: `pcbench-${id}:`,
    stream: `PCBENCH_${id}`,
    subjectPrefix: `pcbench_${id}`,
    sioKey: `siobench-${id}`,
  };
}

export interface CrossServerArgs {
  readonly peer: CrossPeer;
  readonly role: NodeRole;
  readonly payloadBytes: number;
  readonly names: BrokerNames;
}

export type CrossServerCommand =
  | { readonly type: "burst"; readonly messages: number; readonly batch: number }
  | { readonly type: "paced"; readonly messages: number; readonly intervalMs: number }
  | { readonly type: "stop" };

export type CrossServerReport =
  | { readonly type: "ready"; readonly port: number }
  | { readonly type: "burst-done"; readonly startNs: number; readonly lastPublishNs: number }
  | { readonly type: "paced-done" };

export interface CrossClientArgs {
  readonly peer: Peer;
  readonly clients: number;
  /** Connections that time events in a latency phase, spread evenly over all of them. */
  readonly latencyClients: number;
  readonly sources: number;
  readonly concurrency: number;
}

export type CrossClientCommand =
  | ConnectCommand
  /** Connections spread over several nodes in contiguous blocks: the first clients ÷ n on ports[0], and so on. */
  | { readonly type: "connect-nodes"; readonly ports: readonly number[] }
  /** latency: read every event's stamp and report percentiles of arrival − stamp. */
  | { readonly type: "expect"; readonly messages: number; readonly timeoutMs: number; readonly latency: boolean }
  | { readonly type: "stop" };

export interface Latency {
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly samples: number;
  /** Events whose stamp had not arrived with the frame's first bytes (not sampled). */
  readonly unstamped: number;
}

export type CrossClientReport =
  | { readonly type: "ready"; readonly connected: number }
  /** The expectation is in place: publishing may start. */
  | { readonly type: "expecting" }
  | {
      readonly type: "done";
      readonly complete: boolean;
      readonly lastNs: number;
      readonly received: number;
      readonly expected: number;
      readonly clientCpuPercent: number;
      readonly latency: Latency | undefined;
    };

/*
 * Stamp: the payload starts with "~ts:" and 16 decimal digits, the publish time in µs of
 * CLOCK_MONOTONIC (process.hrtime), which all processes of the machine share. The rest is
 * filler. ASCII only, so Socket.IO's JSON string carries it unescaped.
 */
export const STAMP_MARK = Buffer.from("~ts:");
const DIGITS = 16;
const STAMP_BYTES = STAMP_MARK.length + DIGITS;

export function nowUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/** Returns a function that makes a fresh payload of `size` bytes stamped with a time. */
export function stampedBytes(size: number): (us: number) => Uint8Array {
  if (size < STAMP_BYTES) throw new Error(`payloads need at least ${STAMP_BYTES} bytes for the stamp`);
  const template = new Uint8Array(size);
  template.set(STAMP_MARK, 0);
  for (let i = STAMP_BYTES; i < size; i++) template[i] = 97 + (i % 26);
  return (us) => {
    const out = template.slice();
    let v = us;
    for (let i = STAMP_BYTES - 1; i >= STAMP_MARK.length; i--) {
      out[i] = 48 + (v % 10);
      v = Math.floor(v / 10);
    }
    return out;
  };
}

export function stampedText(size: number): (us: number) => string {
  const bytes = stampedBytes(size);
  return (us) => Buffer.from(bytes(us)).toString("latin1");
}

/** The stamp of a frame whose bytes [at, end) are at hand, or -1 if it is not among them. */
export function readStamp(buf: Buffer, at: number, end: number): number {
  const i = buf.indexOf(STAMP_MARK, at);
  if (i < 0 || i + STAMP_BYTES > end) return -1;
  let v = 0;
  for (let j = i + STAMP_MARK.length; j < i + STAMP_BYTES; j++) v = v * 10 + (buf[j]! - 48);
  return v;
}
