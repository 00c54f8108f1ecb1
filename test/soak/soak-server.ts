import { createServer, type Broker, type IdempotencyStore, type ProtocastServer, type SessionStore } from "protocast/node";
import { ChatService } from "../../generated/acme/chat/v1/chat_protocast.js";

/** The soak's server: ChatService whose sendMessage publishes the text to its room. */
export async function startSoakServer(host: string, brokerUrl: string | undefined): Promise<{ server: ProtocastServer; port: number; close(): Promise<void> }> {
  const shared: Partial<Awaited<ReturnType<typeof engine>>> = brokerUrl === undefined ? {} : await engine(brokerUrl);
  // A short grace period and record lifetime (of the embedded idempotency store), so that
  // what the run left behind is gone soon after it.
  const server = createServer({ ...shared, graceMs: 3_000, idempotencyTtlMs: 5_000, authenticate: (req) => ({ id: req.token ?? "anon", scopes: ["chat"] }) });
  server.implement(ChatService, {
    async sendMessage(request, context) {
      await context.publish(ChatService.channels.roomEvents, { roomId: request.roomId }, { messageId: "", author: context.principal.id, text: request.text, sentAtMs: 0n });
      return { messageId: "", sentAtMs: 0n };
    },
    listRooms: () => ({ rooms: [] }),
    publishTyping: (_p, m, ctx) => ({ user: ctx.principal.id, typing: m.typing }),
  });
  const address = await server.listen(0, host);
  return {
    server,
    port: address.port,
    async close() {
      await server.close();
      await Promise.all([shared.broker?.close(), shared.sessions?.close(), shared.idempotency?.close()]);
    },
  };
}

async function engine(url: string): Promise<{ broker: Broker; sessions: SessionStore; idempotency: IdempotencyStore }> {
  if (url.startsWith("nats:")) {
    const servers = new URL(url).host;
    const { createNatsBroker, createNatsIdempotencyStore, createNatsSessionStore } = await import("protocast/nats");
    return { broker: await createNatsBroker({ servers }), sessions: await createNatsSessionStore({ servers }), idempotency: await createNatsIdempotencyStore({ servers }) };
  }
  const { createRedisBroker, createRedisIdempotencyStore, createRedisSessionStore } = await import("protocast/redis");
  return { broker: createRedisBroker({ url }), sessions: createRedisSessionStore({ url }), idempotency: createRedisIdempotencyStore({ url }) };
}
