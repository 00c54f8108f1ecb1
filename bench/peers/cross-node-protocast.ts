/**
 * One Protocast node of the cross-node scenario: createServer() with a Redis or NATS broker
 * (protocast-redis, protocast-nats) or the embedded one (protocast-single). Node A publishes
 * with server.publish; node B only holds the subscribers.
 */
import { createNatsBroker } from "../../runtime/nats.js";
import { createServer, type Broker } from "../../runtime/node.js";
import { createRedisBroker } from "../../runtime/redis.js";
import { BenchService } from "../../generated/acme/bench/v1/bench_protocast.js";
import { stampedBytes, type CrossServerArgs } from "../lib/cross-node.js";
import { ROOM } from "../lib/payload.js";
import { workerArgs } from "../lib/proc.js";
import { serveNode } from "./cross-node-serve.js";

const args = workerArgs<CrossServerArgs>();
const { names } = args;

let broker: Broker | undefined;
if (args.peer === "protocast-redis") broker = createRedisBroker({ url: names.redisUrl, keyPrefix: names.keyPrefix });
else if (args.peer === "protocast-nats") broker = await createNatsBroker({ servers: names.natsServers, stream: names.stream, subjectPrefix: names.subjectPrefix });
else if (args.peer !== "protocast-single") throw new Error(`not a Protocast peer: ${args.peer}`);

// Rate limits out of the way, as in protocast-server.ts.
const unlimited = 1_000_000_000;
const server = createServer({
  ...(broker === undefined ? {} : { broker }),
  rateMessagesPerSecond: unlimited,
  rateMessagesBurst: unlimited,
  rateBytesPerSecond: unlimited,
  rateBytesBurst: unlimited,
});
server.implement(BenchService, { echo: (request) => ({ payload: request.payload }) });
const { port } = await server.listen(0, "127.0.0.1");

const params = { roomId: ROOM };
const payload = stampedBytes(args.payloadBytes);
const fail = (e: unknown): void => {
  console.error(`[${args.peer} ${args.role}] publish failed:`, e);
  process.exit(1);
};

serveNode(
  {
    port,
    publish: (us) => void server.publish(BenchService.channels.ticks, params, { payload: payload(us) }).catch(fail),
  },
  async () => {
    await broker?.close();
  },
);
