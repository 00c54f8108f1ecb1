/**
 * Client process of the cross-node scenario: raw WebSocket subscribers on node B, as in
 * fan-client.ts (same dialects, same frame scanner).
 *
 * Latency: one process reads every connection in turn, 10–15 µs per socket read here when
 * each read holds one message. A server that writes faster than that (Protocast) would then
 * be timed at the pace of this client rather than its own. So in a latency phase only every
 * k-th connection (args.latencyClients of them, spread over the server's member order) reads
 * and times its events; the others stop reading (their bytes wait in the kernel; the server's
 * writes cost the same) and catch up once the timed ones have everything. Arrival time is
 * taken once per socket read.
 */
import type { Socket } from "node:net";
import { nowUs, readStamp, type CrossClientArgs, type CrossClientCommand, type CrossClientReport, type Latency } from "../lib/cross-node.js";
import { nowNs } from "../lib/messages.js";
import { onCommand, report, workerArgs } from "../lib/proc.js";
import { upgrade } from "../lib/upgrade.js";
import { FrameReader, OPCODE_CLOSE, type FrameSink, type IsEvent } from "../lib/ws-frames.js";
import { dialects, type Dialect, type RawConn } from "./raw-dialects.js";

const args = workerArgs<CrossClientArgs>();
const dialect: Dialect = dialects[args.peer];
const send = (m: CrossClientReport): void => report(m);

let total = 0;
let target = Number.POSITIVE_INFINITY;
let stopping = false;

/** Latency samples (µs) of the current expectation, when it asked for them. */
let latencies: Float64Array | undefined;
let sampled = 0;
let unstamped = 0;
/** Events still due at the sampled connections before the others read again. */
let sampledDue = 0;
/** Arrival of the socket read being scanned, taken at its first stamped event; -1: not yet. */
let arrivalUs = -1;
const stride = Math.max(1, Math.floor(args.clients / Math.max(1, args.latencyClients)));

const timedEvent: IsEvent = (opcode, buf, at, length) => {
  if (!dialect.isEvent(opcode, buf, at, length)) return false;
  if (latencies !== undefined) {
    const stamp = readStamp(buf, at, Math.min(buf.length, at + length));
    if (stamp < 0) unstamped++;
    else {
      if (arrivalUs < 0) arrivalUs = nowUs();
      if (sampled < latencies.length) latencies[sampled++] = arrivalUs - stamp;
    }
  }
  return true;
};

/** libuv's read switch of a socket, as net.Socket.pause() uses it for sockets with `onread`. */
interface ReadHandle {
  reading: boolean;
  readStop(): number;
  readStart(): number;
}

let expectTimer: ReturnType<typeof setTimeout> | undefined;
let expectNs = 0;
let expectCpu: NodeJS.CpuUsage | undefined;

/** Nearest-rank percentile of sorted values. */
const rank = (sorted: Float64Array, q: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;

function finish(complete: boolean): void {
  const lastNs = nowNs();
  const expected = target;
  target = Number.POSITIVE_INFINITY;
  clearTimeout(expectTimer);
  sampledDue = 0;
  for (const c of conns) c.reading(true);
  const used = process.cpuUsage(expectCpu);
  let latency: Latency | undefined;
  if (latencies !== undefined) {
    const sorted = latencies.subarray(0, sampled).sort();
    latency = sampled === 0 ? undefined : { p50Ms: rank(sorted, 0.5) / 1000, p99Ms: rank(sorted, 0.99) / 1000, samples: sampled, unstamped };
    latencies = undefined;
  }
  const clientCpuPercent = ((used.user + used.system) / 1000 / ((lastNs - expectNs) / 1e6)) * 100;
  send({ type: "done", complete, lastNs, received: total, expected, clientCpuPercent, latency });
}

class Conn implements RawConn, FrameSink {
  count = 0;
  epoch = "";
  base = 0;
  inSeq = 0;
  readonly subscribe = true;
  readonly reliable = false;
  private readonly reader: FrameReader;

  constructor(
    private readonly socket: Socket,
    readonly sampled: boolean,
    readonly ready: () => void,
    readonly fail: (reason: string) => void,
  ) {
    this.reader = new FrameReader(sampled ? timedEvent : dialect.isEvent, this);
  }

  /** Stops or restarts reading from the kernel (Socket.pause() would go on reading into its buffer). */
  reading(on: boolean): void {
    const h = (this.socket as unknown as { _handle: ReadHandle | null })._handle;
    if (h === null || h.reading === on) return;
    h.reading = on;
    if (on) h.readStart();
    else h.readStop();
  }

  write(frame: Buffer): void {
    this.socket.write(frame);
  }

  push(chunk: Buffer): void {
    arrivalUs = -1;
    this.reader.push(chunk);
  }

  event(): void {
    this.count++;
    if (this.sampled && sampledDue > 0 && --sampledDue === 0) for (const c of conns) c.reading(true);
    if (++total === target) finish(true);
  }

  message(opcode: number, payload: Buffer): void {
    if (opcode === OPCODE_CLOSE) {
      this.fail(`server closed the connection (${payload.length >= 2 ? payload.readUInt16BE(0) : 1005}: ${payload.subarray(2).toString()})`);
      return;
    }
    const before = this.count;
    dialect.message(this, opcode, payload);
    if (this.count !== before) {
      total += this.count - before;
      if (total === target) finish(true);
    }
  }
}

const conns: Conn[] = [];
let ports: readonly number[] = [];

async function openOne(i: number): Promise<void> {
  const port = ports[Math.floor((i * ports.length) / args.clients)]!;
  const { socket, head } = await upgrade({ port, path: dialect.path, protocol: dialect.protocol, localAddress: `127.0.0.${1 + (i % args.sources)}` });
  await new Promise<void>((resolve, reject) => {
    const c = new Conn(socket, i % stride === 0, resolve, (reason) => reject(new Error(reason)));
    conns.push(c);
    socket.on("data", (chunk: Buffer) => c.push(chunk));
    socket.on("error", () => undefined);
    socket.on("close", () => {
      if (!stopping) {
        console.error(`[cross-node-client ${args.peer}] connection ${i} closed by the server`);
        process.exit(1);
      }
    });
    if (head.length > 0) c.push(head);
    dialect.open(c);
  });
}

onCommand<CrossClientCommand>(
  async (command) => {
    if (command.type === "connect" || command.type === "connect-nodes") {
      ports = command.type === "connect" ? [command.port] : command.ports;
      let next = 0;
      const lane = async (): Promise<void> => {
        while (next < args.clients) await openOne(next++);
      };
      await Promise.all(Array.from({ length: Math.min(args.concurrency, args.clients) }, lane));
      send({ type: "ready", connected: conns.length });
    } else if (command.type === "expect") {
      target = total + command.messages * conns.length;
      if (command.latency) {
        const timed = conns.filter((c) => c.sampled).length;
        latencies = new Float64Array(command.messages * timed);
        sampled = 0;
        unstamped = 0;
        sampledDue = command.messages * timed;
        for (const c of conns) if (!c.sampled) c.reading(false);
      }
      expectNs = nowNs();
      expectCpu = process.cpuUsage();
      expectTimer = setTimeout(() => finish(false), command.timeoutMs);
      send({ type: "expecting" });
      if (total >= target) finish(true);
    }
  },
  async () => {
    stopping = true;
    clearTimeout(expectTimer);
  },
);
