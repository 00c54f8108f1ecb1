// A server node for the kill tests and the soak: ChatService on a shared broker, session store
// and idempotency store, as a process of its own (so that SIGKILL is a real node death).
//   PORT=0 BROKER=redis://… | nats://…  SEND_DELAY_MS=n  node --import tsx test/brokers/node-main.ts
// sendMessage waits SEND_DELAY_MS before it publishes, so that a kill finds calls running.
// Prints "node <id> on <port>" once it listens.
import { createServer, type Broker, type IdempotencyStore, type SessionStore } from "protocast/node";
import { ChatService } from "../../generated/acme/chat/v1/chat_protocast.js";

const brokerUrl = process.env["BROKER"] ?? "redis://127.0.0.1:6379";
const delayMs = Number(process.env["SEND_DELAY_MS"] ?? 0);

async function shared(): Promise<{ broker: Broker; sessions: SessionStore; idempotency: IdempotencyStore }> {
  if (brokerUrl.startsWith("nats:")) {
    const servers = new URL(brokerUrl).host;
    const { createNatsBroker, createNatsIdempotencyStore, createNatsSessionStore } = await import("protocast/nats");
    const [broker, sessions, idempotency] = await Promise.all([createNatsBroker({ servers }), createNatsSessionStore({ servers }), createNatsIdempotencyStore({ servers })]);
    return { broker, sessions, idempotency };
  }
  const { createRedisBroker, createRedisIdempotencyStore, createRedisSessionStore } = await import("protocast/redis");
  return { broker: createRedisBroker({ url: brokerUrl }), sessions: createRedisSessionStore({ url: brokerUrl }), idempotency: createRedisIdempotencyStore({ url: brokerUrl }) };
}

const server = createServer({ ...(await shared()), authenticate: (req) => ({ id: req.token ?? "anon", scopes: ["chat"] }) });
server.implement(ChatService, {
  async sendMessage(request, context) {
    if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
    await context.publish(ChatService.channels.roomEvents, { roomId: request.roomId }, { messageId: "", author: context.principal.id, text: request.text, sentAtMs: 0n });
    return { messageId: "", sentAtMs: 0n };
  },
  listRooms: () => ({ rooms: [] }),
  publishTyping: (_p, m, ctx) => ({ user: ctx.principal.id, typing: m.typing }),
});
const address = await server.listen(Number(process.env["PORT"] ?? 0), "127.0.0.1");
console.log(`node ${server.nodeId} on ${address.port}`);
process.once("SIGTERM", () => void server.close().then(() => process.exit(0)));
