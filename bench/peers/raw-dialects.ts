import { decodeEnvelope, encodeEnvelope } from "../../runtime/wire/index.js";
import type { Envelope } from "../../runtime/wire/index.js";
import { BenchService } from "../../generated/acme/bench/v1/bench_protocast.js";
import type { Peer } from "../lib/messages.js";
import { ROOM } from "../lib/payload.js";
import { clientFrame, OPCODE_BINARY, OPCODE_TEXT, type IsEvent } from "../lib/ws-frames.js";

/** What a dialect may do with one raw connection. */
export interface RawConn {
  /** Broadcast events counted so far. */
  count: number;
  /** Set by the Protocast dialect from the Subscribed answer. */
  epoch: string;
  base: number;
  inSeq: number;
  readonly subscribe: boolean;
  readonly reliable: boolean;
  write(frame: Buffer): void;
  ready(): void;
  fail(reason: string): void;
}

/**
 * The least each peer's protocol needs from a client that connects, joins the broadcast and
 * counts events: handshake, keep-alive answers and (at-least-once) acknowledgements. Events
 * are recognised by their first payload bytes and never decoded; other frames are rare and
 * handled whole.
 */
export interface Dialect {
  readonly path: string;
  readonly protocol: string | undefined;
  readonly isEvent: IsEvent;
  open(c: RawConn): void;
  message(c: RawConn, opcode: number, payload: Buffer): void;
  /** Tells the server how far the connection has read (at-least-once receivers only). */
  ack(c: RawConn): void;
}

/** An event envelope has seq 0 and ackSeq 0 (omitted), so it starts with the tag of field 13. */
const EVENT_TAG = (13 << 3) | 2;

function sendEnvelope(c: RawConn, env: Envelope): void {
  c.write(clientFrame(encodeEnvelope(env), OPCODE_BINARY));
}

const protocast: Dialect = {
  path: "/protocast",
  protocol: "protocast.v1",
  isEvent: (opcode, buf, at, length) => opcode === OPCODE_BINARY && length > 0 && buf[at] === EVENT_TAG,
  open(c) {
    sendEnvelope(c, { seq: 0, ackSeq: 0, frame: { case: "hello", value: { version: 1, client: "protocast-bench" } } });
  },
  message(c, _opcode, payload) {
    const env = decodeEnvelope(payload);
    if (env.seq > c.inSeq) c.inSeq = env.seq;
    const f = env.frame;
    switch (f.case) {
      case "welcome": {
        if (!c.subscribe) {
          c.ready();
          return;
        }
        const def = c.reliable ? BenchService.channels.reliableTicks : BenchService.channels.ticks;
        const channel = def.topic({ roomId: ROOM });
        sendEnvelope(c, {
          seq: 1,
          ackSeq: c.inSeq,
          frame: { case: "subscribe", value: { id: 1, method: def.path, channel, recover: false, epoch: "", offset: 0 } },
        });
        return;
      }
      case "subscribed":
        c.epoch = f.value.epoch;
        c.base = f.value.offset;
        c.ready();
        return;
      case "event":
        // Only reached if the server ever frames events differently from what isEvent expects.
        c.count++;
        return;
      case "ping":
        sendEnvelope(c, { seq: 0, ackSeq: c.inSeq, frame: { case: "pong", value: { sentAtMs: f.value.sentAtMs } } });
        return;
      case "error":
        c.fail(`server error ${f.value.code}: ${f.value.message}`);
        return;
      default:
        return;
    }
  },
  ack(c) {
    const channel = BenchService.channels.reliableTicks.topic({ roomId: ROOM });
    // A fresh server's channel starts empty and nothing is lost on loopback, so the offset of
    // the last event read is the subscribe offset plus the number of events read.
    sendEnvelope(c, {
      seq: 0,
      ackSeq: c.inSeq,
      frame: { case: "ack", value: { channels: [{ channel, epoch: c.epoch, offset: c.base + c.count }] } },
    });
  },
};

const ws: Dialect = {
  path: "/",
  protocol: undefined,
  isEvent: (opcode) => opcode === OPCODE_BINARY,
  open(c) {
    c.ready();
  },
  message() {
    // The ws server sends nothing but broadcast frames.
  },
  ack(c) {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32BE(c.count, 0);
    c.write(clientFrame(b, OPCODE_BINARY));
  },
};

const CH_4 = 0x34; // "4": engine.io message
const CH_2 = 0x32; // "2": socket.io EVENT inside it

/** Engine.IO v4 over a WebSocket (EIO=4): text packets "0" open, "2" ping, "3" pong, "4" message. */
const socketio: Dialect = {
  path: "/socket.io/?EIO=4&transport=websocket",
  protocol: undefined,
  isEvent: (opcode, buf, at, length) => opcode === OPCODE_TEXT && length >= 2 && buf[at] === CH_4 && buf[at + 1] === CH_2,
  open() {
    // The server speaks first with the engine.io open packet.
  },
  message(c, opcode, payload) {
    if (opcode !== OPCODE_TEXT) return;
    const text = payload.toString("latin1");
    if (text.startsWith("0")) c.write(clientFrame("40", OPCODE_TEXT));
    else if (text.startsWith("40")) c.ready();
    else if (text === "2") c.write(clientFrame("3", OPCODE_TEXT));
    else if (text.startsWith("44")) c.fail(`socket.io refused the connection: ${text}`);
  },
  ack() {
    // Socket.IO's connection state recovery keeps packets by offset on the server; its
    // clients send no acknowledgements.
  },
};

export const dialects: Readonly<Record<Peer, Dialect>> = { protocast, ws, socketio };
