/**
 * Raw ws server process, written as well as ws allows: every broadcast message is framed
 * once (WebSocket.Sender.frame) and the same bytes are written to every socket, with the
 * writes of one event-loop turn corked into one socket write. RPC echoes each message back,
 * corked the same way. At-least-once: each frame carries its offset, the server keeps the
 * last 100 frames for replay and records each client's acknowledged offset.
 */
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { WebSocketServer, type WebSocket } from "ws";
import { benchUserOfHeader } from "../lib/bench-token.js";
import type { ServerArgs } from "../lib/messages.js";
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
const wss = new WebSocketServer({
  server: http,
  perMessageDeflate: false,
  clientTracking: false,
  maxPayload: 64 * 1024,
  // With args.authenticate, an upgrade without a bench credential gets HTTP 401.
  ...(args.authenticate === true ? { verifyClient: (info: { req: IncomingMessage }) => benchUserOfHeader(info.req.headers.authorization) !== undefined } : {}),
});
wss.on("connection", (ws, req) => {
  const user = args.authenticate === true ? benchUserOfHeader(req.headers.authorization) : undefined;
  const c: Client = { ws, socket: (ws as unknown as { _socket: Socket })._socket, corked: false, acked: 0, user };
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

function publish(seq: number): void {
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
