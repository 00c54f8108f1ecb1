/**
 * Socket.IO 4.8 server process, WebSocket transport only. Broadcast is io.to(room).emit; RPC
 * is an event with an acknowledgement; at-least-once is Socket.IO's connection state recovery,
 * which keeps every broadcast packet with an offset for the recovery window.
 *
 * Deflate: Socket.IO's own option, `perMessageDeflate: { threshold: 1024 }` (what `true` means
 * to it), which hands compression to ws with ws's defaults: every socket compresses every
 * packet of 1 KiB or more itself, with context takeover and zlib's default level. The update is
 * emitted as an object, as Socket.IO applications do: it serializes the packet once per emit.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Server } from "socket.io";
import { benchUserOfHeader } from "../lib/bench-token.js";
import type { ServerArgs } from "../lib/messages.js";
import { marketUpdate } from "../lib/market-update.js";
import { ROOM, payloadText } from "../lib/payload.js";
import { workerArgs } from "../lib/proc.js";
import { serve } from "./serve.js";

const args = workerArgs<ServerArgs>();
const http = createServer();
const io = new Server(http, {
  transports: ["websocket"],
  serveClient: false,
  perMessageDeflate: args.mode === "deflate" ? { threshold: 1024 } : false,
  ...(args.mode === "reliable" ? { connectionStateRecovery: { maxDisconnectionDuration: 120_000, skipMiddlewares: true } } : {}),
});
if (args.authenticate === true) {
  io.use((socket, next) => {
    const user = benchUserOfHeader(socket.handshake.headers.authorization);
    if (user === undefined) next(new Error("not a bench credential"));
    else {
      (socket.data as { user?: string }).user = user;
      next();
    }
  });
}
io.on("connection", (socket) => {
  void socket.join(ROOM);
  if (args.mode === "rpc") socket.on("echo", (data: unknown, ack: (reply: unknown) => void) => ack(data));
});
await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));

const text = payloadText(args.payloadBytes);

await serve(
  {
    port: (http.address() as AddressInfo).port,
    connections: () => io.engine.clientsCount,
    publish: args.mode === "deflate" ? (seq) => void io.to(ROOM).emit("tick", marketUpdate(seq)) : () => void io.to(ROOM).emit("tick", text),
  },
  args,
);
