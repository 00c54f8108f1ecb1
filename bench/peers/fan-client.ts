/**
 * Client process of the broadcast and idle-memory scenarios: thousands of raw WebSocket
 * connections in one process, each speaking its peer's protocol minimally (see
 * raw-dialects.ts). It reports when every connection is ready, then when every connection
 * has counted the expected number of broadcast events. With `deflate`, every connection offers
 * permessage-deflate as a browser does, fails unless the server accepts it, and inflates what
 * arrives compressed (lib/inflate.ts) before it counts or answers it.
 */
import type { Socket } from "node:net";
import { Inflaters, type Inflate } from "../lib/inflate.js";
import { nowNs, type FanClientArgs, type FanClientCommand, type FanClientReport } from "../lib/messages.js";
import { onCommand, report, workerArgs } from "../lib/proc.js";
import { benchToken } from "../lib/bench-token.js";
import { upgrade } from "../lib/upgrade.js";
import { FrameReader, OPCODE_CLOSE, type FrameSink } from "../lib/ws-frames.js";
import { dialects, type Dialect, type RawConn } from "./raw-dialects.js";

const args = workerArgs<FanClientArgs>();
const dialect: Dialect = dialects[args.peer];
const send = (m: FanClientReport): void => report(m);

/** Events counted over all connections, and the total that ends a burst. */
let total = 0;
let target = Number.POSITIVE_INFINITY;
let stopping = false;
/** Bytes read from every socket, compressed events once inflated, and zlib runs, since the start. */
let bytesIn = 0;
let inflatedIn = 0;
const inflaters = new Inflaters();
/** The same counts when the burst was announced. */
let from = { bytes: 0, inflated: 0, inflations: 0 };

/** What a browser offers: permessage-deflate, letting the server bound the client's window. */
const DEFLATE_OFFER = "permessage-deflate; client_max_window_bits";

function finish(complete: boolean): void {
  const lastNs = nowNs();
  const expected = target;
  target = Number.POSITIVE_INFINITY;
  clearTimeout(expectTimer);
  let min = Number.POSITIVE_INFINITY;
  for (const c of conns) if (c.count < min) min = c.count;
  const used = process.cpuUsage(expectCpu);
  const cpuPercent = ((used.user + used.system) / 1000 / ((lastNs - expectNs) / 1e6)) * 100;
  send({
    type: "done",
    complete,
    lastNs,
    received: total,
    expected,
    minPerClient: min,
    clientCpuPercent: cpuPercent,
    bytesRead: bytesIn - from.bytes,
    inflatedBytes: inflatedIn - from.inflated,
    inflations: inflaters.inflations - from.inflations,
  });
}

class Conn implements RawConn, FrameSink {
  count = 0;
  acked = 0;
  epoch = "";
  base = 0;
  inSeq = 0;
  readonly subscribe = args.subscribe;
  readonly reliable = args.reliable;
  private readonly reader = new FrameReader(dialect.isEvent, this);

  constructor(
    private readonly socket: Socket,
    readonly ready: () => void,
    readonly fail: (reason: string) => void,
    /** Undefined when the connection did not negotiate permessage-deflate. */
    private readonly inflate: Inflate | undefined,
  ) {}

  write(frame: Buffer): void {
    this.socket.write(frame);
  }

  push(chunk: Buffer): void {
    this.reader.push(chunk);
  }

  event(): void {
    this.count++;
    if (++total === target) finish(true);
  }

  message(opcode: number, compressedOrPlain: Buffer, compressed: boolean): void {
    let payload = compressedOrPlain;
    if (compressed) {
      if (this.inflate === undefined) {
        this.fail("compressed frame on a connection that did not negotiate permessage-deflate");
        return;
      }
      payload = this.inflate(payload);
      if (dialect.isEvent(opcode, payload, 0, payload.length)) {
        inflatedIn += payload.length;
        this.event();
        return;
      }
    }
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

let port = 0;

async function openOne(i: number): Promise<void> {
  const { socket, head, extensions } = await upgrade({
    port,
    path: dialect.path,
    protocol: dialect.protocol,
    localAddress: `127.0.0.${1 + (i % args.sources)}`,
    headers: {
      ...(args.tokenFrom === undefined ? {} : { Authorization: `Bearer ${benchToken(args.tokenFrom + i)}` }),
      ...(args.deflate === true ? { "Sec-WebSocket-Extensions": DEFLATE_OFFER } : {}),
    },
  });
  let inflate: Inflate | undefined;
  if (args.deflate === true) {
    const params = (extensions ?? "").split(";").map((p) => p.trim());
    if (params[0] !== "permessage-deflate") throw new Error(`${args.peer} server did not accept permessage-deflate (answered: ${extensions ?? "nothing"})`);
    inflate = inflaters.forConnection(!params.includes("server_no_context_takeover"));
  }
  await new Promise<void>((resolve, reject) => {
    const c = new Conn(socket, resolve, (reason) => reject(new Error(reason)), inflate);
    conns.push(c);
    socket.on("data", (chunk: Buffer) => {
      bytesIn += chunk.length;
      c.push(chunk);
    });
    socket.on("error", () => undefined);
    socket.on("close", () => {
      if (!stopping) {
        console.error(`[fan-client ${args.peer}] connection ${i} closed by the server`);
        process.exit(1);
      }
    });
    if (head.length > 0) c.push(head);
    dialect.open(c);
  });
}

/** Opens connections [from, to) with at most `concurrency` handshakes under way. */
async function openRange(from: number, to: number): Promise<void> {
  let next = from;
  const lane = async (): Promise<void> => {
    while (next < to) await openOne(next++);
  };
  await Promise.all(Array.from({ length: Math.min(args.concurrency, to - from) }, lane));
}

let expectTimer: ReturnType<typeof setTimeout> | undefined;
/** When the burst was announced, to tell whether this process kept up with it. */
let expectNs = 0;
let expectCpu: NodeJS.CpuUsage | undefined;
let ackTimer: ReturnType<typeof setInterval> | undefined;

// At-least-once receivers acknowledge what they read; the runtime's own client does it 200 ms
// after the first unacknowledged event, and one shared timer does the same for all of them.
if (args.reliable) {
  ackTimer = setInterval(() => {
    for (const c of conns) {
      if (c.count > c.acked) {
        c.acked = c.count;
        dialect.ack(c);
      }
    }
  }, 200);
}

onCommand<FanClientCommand>(
  async (command) => {
    if (command.type === "connect") {
      port = command.port;
      const first = args.warm > 0 ? Math.min(args.warm, args.clients) : args.clients;
      await openRange(0, first);
      send(first < args.clients ? { type: "warm", connected: conns.length } : { type: "ready", connected: conns.length });
    } else if (command.type === "continue") {
      await openRange(conns.length, args.clients);
      send({ type: "ready", connected: conns.length });
    } else if (command.type === "expect") {
      target = total + command.messages * conns.length;
      from = { bytes: bytesIn, inflated: inflatedIn, inflations: inflaters.inflations };
      expectNs = nowNs();
      expectCpu = process.cpuUsage();
      expectTimer = setTimeout(() => finish(false), command.timeoutMs);
      if (total >= target) finish(true);
    }
  },
  async () => {
    stopping = true;
    clearInterval(ackTimer);
    clearTimeout(expectTimer);
  },
);
