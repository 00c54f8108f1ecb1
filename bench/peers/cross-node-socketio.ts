/**
 * One Socket.IO 4.8 node of the cross-node scenario (socketio-redis): WebSocket transport only,
 * @socket.io/redis-adapter on ioredis. Node A publishes with io.to(room).emit; the adapter
 * carries it over Redis pub/sub to node B, which emits it to its room members.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { createAdapter } from "@socket.io/redis-adapter";
import { Redis } from "ioredis";
import { Server } from "socket.io";
import { stampedText, type CrossServerArgs } from "../lib/cross-node.js";
import { ROOM } from "../lib/payload.js";
import { workerArgs } from "../lib/proc.js";
import { serveNode } from "./cross-node-serve.js";

const args = workerArgs<CrossServerArgs>();
const pub = new Redis(args.names.redisUrl);
const sub = pub.duplicate();
await Promise.all([pub, sub].map((c) => new Promise<void>((resolve, reject) => {
  c.once("ready", resolve);
  c.once("error", reject);
})));

const http = createServer();
const io = new Server(http, {
  transports: ["websocket"],
  serveClient: false,
  perMessageDeflate: false,
  adapter: createAdapter(pub, sub, { key: args.names.sioKey }),
});
io.on("connection", (socket) => void socket.join(ROOM));
// The adapter's PSUBSCRIBE went out on `sub` when the namespace was created; a reply to a
// later command on the same connection means Redis has registered it.
await sub.ping();
await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));

const text = stampedText(args.payloadBytes);
serveNode(
  {
    port: (http.address() as AddressInfo).port,
    publish: (us) => void io.to(ROOM).emit("tick", text(us)),
  },
  async () => {
    pub.disconnect();
    sub.disconnect();
  },
);
