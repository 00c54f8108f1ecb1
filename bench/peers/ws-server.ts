/**
 * Raw ws server process, written as well as ws allows: every broadcast message is framed
 * once (WebSocket.Sender.frame) and the same bytes are written to every socket, with the
 * writes of one event-loop turn corked into one socket write. RPC echoes each message back,
 * corked the same way. At-least-once: each frame carries its offset, the server keeps the
 * last 100 frames for replay and records each client's acknowledged offset.
 *
 * Deflate: ws negotiates permessage-deflate (no context takeover either way, the client's
 * window bounded to 2 KiB, as Protocast does), but compressing per socket is all its own send
 * can do. So this server compresses each message once (node:zlib, level 3, RFC 7692's sync
 * flush with the tail removed), frames it once with RSV1 set, and writes those same bytes to
 * every socket that negotiated the extension; a socket that asked for a smaller server window
 * would get its own compression.
 */
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { constants, deflateRawSync } from "node:zlib";
import { WebSocketServer, type WebSocket } from "ws";
import { benchUserOfHeader } from "../lib/bench-token.js";
import type { ServerArgs } from "../lib/messages.js";
import { marketUpdateBytes } from "../lib/market-update.js";
import { payloadBytes } from "../lib/payload.js";
import { workerArgs } from "../lib/proc.js";
import { OPCODE_BINARY, serverFrame } from "../lib/ws-frames.js";
import { serve } from "./serve.js";

const args = workerArgs<ServerArgs>();
const HISTORY = 100;

interface Client {
  readonly ws: WebSocket;
  readonly socket: Socket;
  corked: boolean;
  acked: number;
  /** The user of the connection's credential, when the server checks credentials. */
  readonly user: string | undefined;
  /** The LZ77 window (bits) this socket's compressed messages may use; undefined: it does not compress. */
  deflateBits: number | undefined;
}

const clients = new Set<Client>();
const corked: Client[] = [];
let uncorkScheduled = false;
const uncorkAll = (): void => {
  uncorkScheduled = false;
  for (const c of corked) {
    c.corked = false;
    c.socket.uncork();
  }
  corked.length = 0;
};

/** Writes a ready frame, corking the socket until the end of this event-loop turn. */
function write(c: Client, frame: Buffer): void {
  if (!c.corked) {
    c.corked = true;
    c.socket.cork();
    corked.push(c);
    if (!uncorkScheduled) {
      uncorkScheduled = true;
      process.nextTick(uncorkAll);
    }
  }
  c.socket.write(frame);
}

const http = createServer();
const deflate = args.mode === "deflate";
const LEVEL = 3;
const wss = new WebSocketServer({
  server: http,
  perMessageDeflate: deflate ? { serverNoContextTakeover: true, clientNoContextTakeover: true, clientMaxWindowBits: 11 } : false,
  clientTracking: false,
  maxPayload: 64 * 1024,
  // With args.authenticate, an upgrade without a bench credential gets HTTP 401.
  ...(args.authenticate === true ? { verifyClient: (info: { req: IncomingMessage }) => benchUserOfHeader(info.req.headers.authorization) !== undefined } : {}),
});

/** The window a socket negotiated for what the server sends, or undefined without permessage-deflate. */
function deflateBits(ws: WebSocket): number | undefined {
  const ext = (ws as unknown as { _extensions: Record<string, { params?: { server_max_window_bits?: number } } | undefined> })._extensions["permessage-deflate"];
  return ext === undefined ? undefined : (ext.params?.server_max_window_bits ?? 15);
}

wss.on("connection", (ws, req) => {
  const user = args.authenticate === true ? benchUserOfHeader(req.headers.authorization) : undefined;
  const c: Client = { ws, socket: (ws as unknown as { _socket: Socket })._socket, corked: false, acked: 0, user, deflateBits: deflateBits(ws) };
  clients.add(c);
  ws.on("close", () => clients.delete(c));
  ws.on("error", () => undefined);
  if (args.mode === "rpc") {
    ws.on("message", (data: Buffer) => write(c, serverFrame(data, OPCODE_BINARY)));
  } else if (args.mode === "reliable") {
    ws.on("message", (data: Buffer) => {
      if (data.length === 4) c.acked = Math.max(c.acked, data.readUInt32BE(0));
    });
  }
});
await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));

const payload = Buffer.from(payloadBytes(args.payloadBytes));
const history: Buffer[] = [];

/** RFC 7692 7.2.1: DEFLATE, a sync flush, and the final 0x00 0x00 0xff 0xff left off. */
function compressedFrame(data: Buffer, windowBits: number): Buffer {
  const out = deflateRawSync(data, { level: LEVEL, windowBits, finishFlush: constants.Z_SYNC_FLUSH });
  return serverFrame(out.subarray(0, out.length - 4), OPCODE_BINARY, true);
}

function publishDeflated(seq: number): void {
  const data = marketUpdateBytes(seq);
  // One frame per window size in use: in practice one for everybody (15 bits).
  const frames = new Map<number | undefined, Buffer>();
  for (const c of clients) {
    let frame = frames.get(c.deflateBits);
    if (frame === undefined) {
      frame = c.deflateBits === undefined ? serverFrame(data, OPCODE_BINARY) : compressedFrame(data, c.deflateBits);
      frames.set(c.deflateBits, frame);
    }
    write(c, frame);
  }
}

function publish(seq: number): void {
  if (deflate) {
    publishDeflated(seq);
    return;
  }
  let frame: Buffer;
  if (args.mode === "reliable") {
    const body = Buffer.allocUnsafe(4 + payload.length);
    body.writeUInt32BE(seq, 0);
    payload.copy(body, 4);
    frame = serverFrame(body, OPCODE_BINARY);
    history[seq % HISTORY] = frame;
  } else {
    frame = serverFrame(payload, OPCODE_BINARY);
  }
  for (const c of clients) write(c, frame);
}

await serve({ port: (http.address() as AddressInfo).port, connections: () => clients.size, publish }, args);
