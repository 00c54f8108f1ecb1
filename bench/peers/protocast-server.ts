/** Protocast server process: the runtime as an application uses it. */
import { Code, createServer, ProtocastError } from "../../runtime/node.js";
import { createRedisSessionStore } from "../../runtime/redis.js";
import { BenchService } from "../../generated/acme/bench/v1/bench_protocast.js";
import { benchUser } from "../lib/bench-token.js";
import type { ServerArgs } from "../lib/messages.js";
import { marketUpdateBytes } from "../lib/market-update.js";
import { ROOM, payloadBytes } from "../lib/payload.js";
import { workerArgs } from "../lib/proc.js";
import { serve } from "./serve.js";

const args = workerArgs<ServerArgs>();
// The per-connection rate limits (1,000 frames/s by default) protect a server from one client;
// the RPC scenario sends far more than that on purpose. They are raised out of the way, so
// their check still runs on every frame but never refuses one.
const unlimited = 1_000_000_000;
// With --session-store redis, every frame addressed to a session is stored in Redis before it
// goes out (keys under a prefix of this process; they expire on their own about two minutes
// after the process ends).
const prefix = `pcbench-${process.pid}:`;
const sessions = args.sessionStore === "redis" ? createRedisSessionStore({ url: process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379", keyPrefix: prefix }) : undefined;
const server = createServer({
  ...(sessions === undefined ? {} : { sessions }),
  ...(args.authenticate === true
    ? {
        authenticate: (req) => {
          const user = benchUser(req.token);
          if (user === undefined) throw new ProtocastError(Code.Unauthenticated, "not a bench credential");
          return { id: user, scopes: ["bench"] };
        },
      }
    : {}),
  rateMessagesPerSecond: unlimited,
  rateMessagesBurst: unlimited,
  rateBytesPerSecond: unlimited,
  rateBytesBurst: unlimited,
  // Deflate: the option as an application turns it on, with its defaults (threshold 1 KiB,
  // level 3); each channel event is compressed once for every subscriber.
  ...(args.mode === "deflate" ? { compression: true } : {}),
});
server.implement(BenchService, {
  echo: (request) => ({ payload: request.payload }),
});
const { port } = await server.listen(0, "127.0.0.1");

const params = { roomId: ROOM };
const message = { payload: payloadBytes(args.payloadBytes) };
const fail = (e: unknown): void => {
  console.error("[protocast-server] publish failed:", e);
  process.exit(1);
};
const publish =
  args.mode === "reliable"
    ? () => void server.publish(BenchService.channels.reliableTicks, params, message).catch(fail)
    : args.mode === "deflate"
      ? (seq: number) => void server.publish(BenchService.channels.ticks, params, { payload: marketUpdateBytes(seq) }).catch(fail)
      : () => void server.publish(BenchService.channels.ticks, params, message).catch(fail);

await serve({ port, connections: () => server.connectionCount, publish }, args);
