import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { createClient, type Broker } from "protocast/node";
import { ChatService } from "../../generated/acme/chat/v1/chat_protocast.js";
import { createNatsBroker } from "../../runtime/adapters/nats/nats-broker.js";
import { createRedisBroker } from "../../runtime/adapters/redis/redis-broker.js";
import { startHarness, type Harness } from "../support/harness.js";
import { natsUrl, probe, redisUrl, skipReason, uniqueName } from "./services.js";

// Two server nodes on one engine: a client on one node receives what the other publishes,
// in order, once — the hub and sessions work unchanged on a networked broker.

const redisDown = skipReason("Redis", await probe(redisUrl));
const natsDown = skipReason("NATS", await probe(natsUrl));
const stream = uniqueName("PCTEST_XNODE_").toUpperCase();

const engines: { name: string; down: string | undefined; broker: () => Promise<Broker>; cleanup: () => Promise<void> }[] = [
  {
    name: "redis",
    down: redisDown,
    broker: () => Promise.resolve(createRedisBroker({ url: redisUrl, keyPrefix: `${stream}:` })),
    async cleanup() {
      const admin = new Redis(redisUrl);
      const keys = await admin.keys(`${stream}:*`); // a handful: one room
      if (keys.length > 0) await admin.del(...keys);
      await admin.quit();
    },
  },
  {
    name: "nats",
    down: natsDown,
    broker: () => createNatsBroker({ servers: new URL(natsUrl).host, stream, subjectPrefix: stream.toLowerCase() }),
    async cleanup() {
      const nc = await connect({ servers: new URL(natsUrl).host });
      await (await jetstreamManager(nc)).streams.delete(stream).catch(() => undefined);
      await nc.close();
    },
  },
];

for (const engine of engines) {
  describe.skipIf(engine.down !== undefined)(`two nodes on ${engine.name}`, () => {
    const open: { h: Harness; b: Broker }[] = [];
    afterAll(async () => {
      for (const { h, b } of open) {
        await h.close();
        await b.close();
      }
      await engine.cleanup();
    });

    const node = async (): Promise<Harness> => {
      const b = await engine.broker();
      const h = await startHarness({ broker: b, authenticate: (req) => ({ id: req.token ?? "anon", scopes: ["chat"] }) });
      h.server.implement(ChatService, {
        async sendMessage(req, ctx) {
          const at = await ctx.publish(ChatService.channels.roomEvents, { roomId: req.roomId }, { text: req.text, author: ctx.principal.id });
          return { messageId: String(at.offset) };
        },
        listRooms: () => ({ rooms: [] }),
        publishTyping: (_params, message, ctx) => ({ user: ctx.principal.id, typing: message.typing }),
      });
      open.push({ h, b });
      return h;
    };

    it("a client on one node receives, in order, what clients of the other node send", async () => {
      const [a, b] = [await node(), await node()];
      const room = uniqueName("x");
      const reader = createClient(ChatService, a.client({ token: "reader" })).roomEvents({ roomId: room });
      await reader.ready;
      const writer = createClient(ChatService, b.client({ token: "writer" }));
      const total = 100;
      const got: string[] = [];
      const reading = (async () => {
        for await (const ev of reader) {
          got.push(ev.text);
          if (got.length === total) break;
        }
      })();
      const sent: string[] = [];
      for (let i = 0; i < total; i++) {
        sent.push(`m${i}`);
        await writer.sendMessage({ roomId: room, text: `m${i}` });
      }
      await reading;
      expect(got).toEqual(sent);
    }, 20_000);
  });
}
