import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { createClient } from "protocast/node";
import { ChatService } from "../../generated/acme/chat/v1/chat_protocast.js";
import { createRedisBroker } from "../../runtime/adapters/redis/redis-broker.js";
import { startHarness, until, type Harness } from "../support/harness.js";
import { startOutageProxy } from "./outage-proxy.js";
import { hostPort, probe, redisUrl, skipReason, uniqueName } from "./services.js";

// A node that loses its broker is cut off from the cluster: the others count it dead and its
// members leave. When the broker comes back, the nodes find each other again and the members
// of each are listed again everywhere, without any client doing anything.

const redisDown = skipReason("Redis", await probe(redisUrl));
const prefix = uniqueName("PCOUT_");

describe.skipIf(redisDown !== undefined)("a cluster node cut off from Redis", () => {
  const closing: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const c of closing.reverse()) await c();
    const admin = new Redis(redisUrl);
    const keys = await admin.keys(`${prefix}:*`);
    if (keys.length > 0) await admin.del(...keys);
    await admin.quit();
  });

  it("drops out while the broker is unreachable and is listed again once it is back", async () => {
    await outageAndBack();
  }, 30_000);

  // B's outage is shorter than B's node timeout, so B never counts A dead and has nothing to
  // re-announce when it hears A again: only A's request for B's members brings them back, and it
  // travels on B's node channel, which may still be resubscribing when the request comes.
  it("is listed again when it never counted the other node dead", async () => {
    await outageAndBack({ nodeTimeoutMs: 60_000 });
  }, 30_000);

  /** Node A on Redis, node B behind a proxy that cuts it off; B may have cluster settings of its own. */
  async function outageAndBack(bCluster: { nodeTimeoutMs?: number } = {}): Promise<void> {
    const { host, port } = hostPort(redisUrl);
    const proxy = await startOutageProxy(port, host);
    closing.push(() => proxy.close());
    // Each test's nodes form a cluster of their own.
    const keyPrefix = `${prefix}:${uniqueName("c")}:`;
    const a = await node(redisUrl, keyPrefix);
    const b = await node(`redis://127.0.0.1:${proxy.port}`, keyPrefix, bCluster);
    await until(() => a.server.nodes().length === 1 && b.server.nodes().length === 1, "the nodes to meet");
    const room = uniqueName("out");
    const alice = createClient(ChatService, a.client({ token: "alice" })).roomEvents({ roomId: room });
    await alice.ready;
    const bob = createClient(ChatService, b.client({ token: "bob" })).roomEvents({ roomId: room });
    await bob.ready;
    await until(() => alice.members.size === 2 && bob.members.size === 2, "both to see two members");

    proxy.down();
    await until(() => alice.members.size === 1 && a.server.nodes().length === 0, "node B to be counted dead", 5_000);
    expect(Array.from(alice.members.values(), (m) => m.principal)).toEqual(["alice"]);

    proxy.up();
    const back = Date.now();
    await until(() => alice.members.size === 2 && bob.members.size === 2, "both to see two members again", 15_000);
    console.log(`members listed again everywhere ${Date.now() - back} ms after the broker came back`);
    expect(a.server.nodes()).toEqual([b.server.nodeId]);
  }

  async function node(url: string, keyPrefix: string, own: { nodeTimeoutMs?: number } = {}): Promise<Harness> {
    const cluster = { heartbeatMs: 100, nodeTimeoutMs: 500, requestTimeoutMs: 1_000, ...own };
    const broker = createRedisBroker({ url, keyPrefix, outageWaitMs: 300, onError: () => undefined });
    const h = await startHarness({ broker, cluster, authenticate: (req) => ({ id: req.token ?? "anon", scopes: ["chat"] }) });
    h.server.implement(ChatService, {
      sendMessage: () => ({ messageId: "" }),
      listRooms: () => ({ rooms: [] }),
      publishTyping: (_p, m, ctx) => ({ user: ctx.principal.id, typing: m.typing }),
    });
    closing.push(async () => {
      await h.close();
      await broker.close();
    });
    return h;
  }
});
