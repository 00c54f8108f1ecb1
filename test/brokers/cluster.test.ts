import { connect as natsConnect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { Redis } from "ioredis";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import {
  Code,
  connect,
  createClient,
  createMemoryBroker,
  createMemoryIdempotencyStore,
  createMemorySessionStore,
  type Broker,
  type IdempotencyStore,
  type SessionStore,
} from "protocast/node";
import { ChatService, type ChatServiceHandlers } from "../../generated/acme/chat/v1/chat_protocast.js";
import { createMetrics } from "protocast/ops";
import { createNatsBroker, createNatsIdempotencyStore, createNatsSessionStore } from "protocast/nats";
import { createRedisBroker, createRedisIdempotencyStore, createRedisSessionStore } from "protocast/redis";
import { startHarness, until, type Harness } from "../support/harness.js";
import { startBalancer } from "../support/tcp-balancer.js";
import { startTcpProxy } from "../support/tcp-proxy.js";
import { natsUrl, probe, redisUrl, skipReason, uniqueName } from "./services.js";

// Several server nodes on one broker form a cluster: a session resumes on whichever node the
// client reaches next, presence and connection counts span the nodes, pushes find their
// principal anywhere. The same suite runs on the embedded broker (nodes in one process),
// Redis and NATS.

const redisDown = skipReason("Redis", await probe(redisUrl));
const natsDown = skipReason("NATS", await probe(natsUrl));
const tag = uniqueName("PCCLUSTER_").toUpperCase();

interface Engine {
  readonly name: string;
  readonly down: string | undefined;
  /** One broker per node (a node owns its connection to the engine). */
  broker(): Promise<Broker>;
  /** The node's connection to the shared session and idempotency stores. */
  stores(): Promise<{ sessions: SessionStore; idempotency: IdempotencyStore }>;
  cleanup(): Promise<void>;
}

const shared = createMemoryBroker();
const memoryStores = { sessions: createMemorySessionStore(), idempotency: createMemoryIdempotencyStore() };
const engines: Engine[] = [
  {
    name: "the embedded broker",
    down: undefined,
    broker: () => Promise.resolve(shared),
    stores: () => Promise.resolve(memoryStores),
    cleanup: () => Promise.resolve(),
  },
  {
    name: "redis",
    down: redisDown,
    broker: () => Promise.resolve(createRedisBroker({ url: redisUrl, keyPrefix: `${tag}:` })),
    stores: () =>
      Promise.resolve({
        sessions: createRedisSessionStore({ url: redisUrl, keyPrefix: `${tag}:` }),
        idempotency: createRedisIdempotencyStore({ url: redisUrl, keyPrefix: `${tag}:` }),
      }),
    async cleanup() {
      const admin = new Redis(redisUrl);
      const keys = await admin.keys(`${tag}:*`);
      if (keys.length > 0) await admin.del(...keys);
      await admin.quit();
    },
  },
  {
    name: "nats",
    down: natsDown,
    broker: () => createNatsBroker({ servers: new URL(natsUrl).host, stream: tag, subjectPrefix: tag.toLowerCase() }),
    stores: async () => ({
      sessions: await createNatsSessionStore({ servers: new URL(natsUrl).host, bucket: `${tag}_S` }),
      idempotency: await createNatsIdempotencyStore({ servers: new URL(natsUrl).host, bucket: `${tag}_I` }),
    }),
    async cleanup() {
      const nc = await natsConnect({ servers: new URL(natsUrl).host });
      const jsm = await jetstreamManager(nc);
      for (const name of [tag, `KV_${tag}_S`, `KV_${tag}_I`]) await jsm.streams.delete(name).catch(() => undefined);
      await nc.close();
    },
  },
];

const CLUSTER = { heartbeatMs: 100, nodeTimeoutMs: 500, requestTimeoutMs: 2_000 };

for (const engine of engines) {
  describe.skipIf(engine.down !== undefined)(`a cluster on ${engine.name}`, () => {
    const nodes: { h: Harness; b: Broker; st: { sessions: SessionStore; idempotency: IdempotencyStore } }[] = [];
    const extra: { close(): Promise<void> }[] = [];
    afterEach(async () => {
      for (const c of extra.splice(0)) await c.close();
      for (const { h, b, st } of nodes.splice(0)) {
        await h.close();
        if (b !== shared) await b.close();
        if (st !== memoryStores) await Promise.all([st.sessions.close(), st.idempotency.close()]);
      }
    });
    afterAll(() => engine.cleanup());

    /** Runs per sendMessage text, on every node together. */
    const runs = new Map<string, number>();

    const node = async (options: { maxConnectionsPerPrincipal?: number; sessionStore?: boolean } = {}): Promise<Harness> => {
      const b = await engine.broker();
      const st = await engine.stores();
      const { sessionStore, ...limits } = options;
      const h = await startHarness({
        broker: b,
        idempotency: st.idempotency,
        ...(sessionStore === true ? { sessions: st.sessions } : {}),
        cluster: CLUSTER,
        graceMs: 10_000,
        ...limits,
        authenticate: (req) => ({ id: req.token ?? "anon", scopes: ["chat"] }),
      });
      const handlers: ChatServiceHandlers = {
        async sendMessage(req, ctx) {
          runs.set(req.text, (runs.get(req.text) ?? 0) + 1);
          const slow = /^slow(quiet)?(\d+):/.exec(req.text);
          if (slow !== null) await new Promise((r) => setTimeout(r, Number(slow[2])));
          // A call that touches nothing but the idempotency record: it can finish on a node cut
          // off from the broker.
          if (slow?.[1] === "quiet") return { messageId: `${h.server.nodeId}:quiet` };
          const at = await ctx.publish(ChatService.channels.roomEvents, { roomId: req.roomId }, { text: req.text, author: ctx.principal.id });
          return { messageId: `${h.server.nodeId}:${at.offset}` };
        },
        listRooms: () => ({ rooms: [] }),
        publishTyping: (_params, message, ctx) => ({ user: ctx.principal.id, typing: message.typing }),
      };
      h.server.implement(ChatService, handlers);
      nodes.push({ h, b, st });
      return h;
    };

    /** Nodes that know of each other. */
    const cluster = async (n: number, options: { maxConnectionsPerPrincipal?: number; sessionStore?: boolean } = {}): Promise<Harness[]> => {
      const hs: Harness[] = [];
      for (let i = 0; i < n; i++) hs.push(await node(options));
      await until(() => hs.every((h) => h.server.nodes().length >= n - 1), "nodes to hear of each other", 5_000);
      return hs;
    };

    /**
     * A client that reaches the nodes in turn through a balancer without affinity, behind a
     * proxy the test can cut, reading a room until it has `total` messages starting with "m".
     */
    const roamer = async (hs: Harness[], token: string, total: number) => {
      const lb = await startBalancer(hs.map((h) => h.port));
      const proxy = await startTcpProxy(lb.port);
      extra.push(lb, proxy);
      const conn = connect(`ws://127.0.0.1:${proxy.port}/protocast`, { token, reconnect: { baseMs: 20, capMs: 100 } });
      extra.push({ close: () => conn.close() });
      const lost: unknown[] = [];
      conn.on("sessionLost", (e) => lost.push(e));
      const chat = createClient(ChatService, conn);
      const room = uniqueName(token);
      const sub = chat.roomEvents({ roomId: room });
      await sub.ready;
      const got: string[] = [];
      const reading = (async () => {
        for await (const ev of sub) {
          if (ev.text.startsWith("m")) got.push(ev.text);
          if (got.length === total) break;
        }
      })();
      return { lb, proxy, conn, chat, room, lost, got, reading, first: conn.sessionId };
    };

    it("a session resumes on another node: same session, the reply of a call still running on the old node, every event once and in order", async () => {
      const [a, b] = await cluster(2);
      const TOTAL = 200;
      const { lb, proxy, conn: mover, chat, room, lost, got, reading, first } = await roamer([a!, b!], "mover", TOTAL);
      expect(first.startsWith(`${a!.server.nodeId}.`)).toBe(true);
      const publisher = createClient(ChatService, b!.client({ token: "pub" }));
      let slowReply: Promise<{ messageId: string }> | undefined;
      for (let i = 0; i < TOTAL; i++) {
        if (i === 50) {
          // A call that is still running on node A when the link goes.
          slowReply = chat.sendMessage({ roomId: room, text: "slow400:x" }, { idempotencyKey: uniqueName("k") });
          await until(() => runs.get("slow400:x") === 1, "the slow call to start");
          lb.routeTo(1);
          proxy.cut();
        }
        await publisher.sendMessage({ roomId: room, text: `m${i}` }, { idempotencyKey: uniqueName("k") });
      }
      const reply = await slowReply!;
      await reading;
      expect(got).toEqual(Array.from({ length: TOTAL }, (_, i) => `m${i}`));
      // The call ran once, on node A, and its reply reached the client through node B.
      expect(reply.messageId.startsWith(`${a!.server.nodeId}:`)).toBe(true);
      expect(runs.get("slow400:x")).toBe(1);
      expect(lost).toEqual([]);
      expect(mover.sessionId).toBe(first);
      expect(a!.server.stats().counters.sessionsHandedOver).toBe(1);
      expect(b!.server.stats().counters.sessionsAdopted).toBe(1);
      // Operators see it in the metrics.
      // With a 500 ms node timeout a loaded machine can let A look dead to B for a moment; the
      // next heartbeat brings it back, and the gauge is read once it has.
      await until(() => b!.server.stats().clusterNodes === 1, "node B to count node A as live");
      const metrics = createMetrics();
      metrics.attach(b!.server);
      const text = await metrics.registry.metrics();
      expect(text).toMatch(/^protocast_sessions_adopted_total 1$/m);
      expect(text).toMatch(/^protocast_cluster_nodes 1$/m);
      // The session lives on B now; A keeps nothing of it.
      expect(a!.server.stats().sessions).toBe(0);
      expect(mover.sessionId.startsWith(`${a!.server.nodeId}.`)).toBe(true);
    }, 30_000);

    it("a session that moved on can move again: the node it started on sends the next request after it", async () => {
      const [a, b, c] = await cluster(3);
      const { lb, proxy, conn, room, lost, got, reading, first: id } = await roamer([a!, b!, c!], "hopper", 60);
      const publisher = createClient(ChatService, a!.client({ token: "pub" }));
      for (let i = 0; i < 60; i++) {
        if (i === 20 || i === 40) {
          const adopted = b!.server.stats().counters.sessionsAdopted + c!.server.stats().counters.sessionsAdopted;
          lb.routeTo(i === 20 ? 1 : 2);
          proxy.cut();
          await until(
            () => conn.state === "open" && b!.server.stats().counters.sessionsAdopted + c!.server.stats().counters.sessionsAdopted > adopted,
            "the session to move",
          );
        }
        await publisher.sendMessage({ roomId: room, text: `m${i}` }, { idempotencyKey: uniqueName("k") });
      }
      await reading;
      expect(got).toEqual(Array.from({ length: 60 }, (_, i) => `m${i}`));
      expect(lost).toEqual([]);
      expect(conn.sessionId).toBe(id);
      expect(b!.server.stats().counters.sessionsAdopted).toBe(1);
      expect(c!.server.stats().counters.sessionsAdopted).toBe(1);
    }, 30_000);

    it("with a session store, a session outlives its node: the client resumes it elsewhere, a call the dead node never answered is run again once", async () => {
      const [a, b] = await cluster(2, { sessionStore: true });
      const TOTAL = 120;
      const { proxy, conn: mover, chat, room, lost, got, reading, first } = await roamer([a!, b!], "survivor", TOTAL);
      expect(first.startsWith(`${a!.server.nodeId}.`)).toBe(true);
      const publisher = createClient(ChatService, b!.client({ token: "pub" }));
      let orphan: Promise<{ messageId: string }> | undefined;
      const key = uniqueName("orphan");
      const text = `slowquiet1500:${key}`;
      for (let i = 0; i < TOTAL; i++) {
        if (i === 40) {
          // A call node A never answers: the node is cut off while the handler sleeps. The
          // handler still finishes there and records its outcome under the key (a node that did
          // the work and died before its answer was stored).
          orphan = chat.sendMessage({ roomId: room, text }, { idempotencyKey: key, timeoutMs: 20_000 });
          await until(() => runs.get(text) === 1, "the slow call to start");
          const dead = nodes.find((n) => n.h === a)!;
          // Node A stops dead: its broker and store connections go, so it can neither answer
          // nor hand anything over; its clients' links are cut.
          await killNode(dead, engine.name === "the embedded broker");
          proxy.cut();
        }
        await publisher.sendMessage({ roomId: room, text: `m${i}` }, { idempotencyKey: uniqueName("k") });
      }
      await reading;
      expect(got).toEqual(Array.from({ length: TOTAL }, (_, i) => `m${i}`));
      expect(lost).toEqual([]);
      expect(mover.sessionId).toBe(first);
      expect(b!.server.stats().counters.sessionsRestored).toBe(1);
      // The orphaned call: node B answered "node_lost", the client sent it again with its key,
      // and the retry waited for the first run's outcome instead of running again.
      const reply = await orphan!;
      expect(reply.messageId).toBe(`${a!.server.nodeId}:quiet`);
      expect(runs.get(text)).toBe(1);
    }, 40_000);

    it("presence spans the nodes: members of other nodes are listed, joins and leaves are heard everywhere", async () => {
      const [a, b, c] = await cluster(3);
      const room = uniqueName("pres");
      const alice = createClient(ChatService, a!.client({ token: "alice" })).roomEvents({ roomId: room });
      await alice.ready;
      const bob = createClient(ChatService, b!.client({ token: "bob" })).roomEvents({ roomId: room });
      await bob.ready;
      // Bob's node fetched the members it did not have: Alice is listed in Bob's answer.
      expect(Array.from(bob.members.values(), (m) => m.principal).sort()).toEqual(["alice", "bob"]);
      await until(() => alice.members.size === 2, "alice to hear bob join");
      // A node with no member asks the others.
      const seen = await c!.server.presence(ChatService.channels.roomEvents, { roomId: room });
      expect(seen.map((m) => m.principal).sort()).toEqual(["alice", "bob"]);
      await bob.unsubscribe();
      await until(() => alice.members.size === 1, "alice to hear bob leave");
      expect(Array.from(alice.members.values(), (m) => m.principal)).toEqual(["alice"]);
    }, 20_000);

    // A node falls silent by losing its own broker connection, as a crashed process would;
    // on the embedded broker the nodes share one broker object, so there it cannot happen.
    if (engine.name !== "the embedded broker") {
      it("a node that falls silent: its members leave everywhere within the node timeout", async () => {
        const [a, b] = await cluster(2);
        const room = uniqueName("gone");
        const alice = createClient(ChatService, a!.client({ token: "alice" })).roomEvents({ roomId: room });
        await alice.ready;
        const bob = createClient(ChatService, b!.client({ token: "bob" })).roomEvents({ roomId: room });
        await bob.ready;
        await until(() => alice.members.size === 2, "alice to hear bob join");
        await nodes.find((n) => n.h === b)!.b.close();
        const started = Date.now();
        await until(() => alice.members.size === 1, "bob's entry to expire", 5_000);
        expect(Date.now() - started).toBeLessThan(CLUSTER.nodeTimeoutMs + 3 * CLUSTER.heartbeatMs + 500);
        expect(a!.server.nodes()).toEqual([]);
      }, 20_000);
    }

    it("pushes reach a principal on whichever node it is connected", async () => {
      const [a, b] = await cluster(2);
      const conn = b!.client({ token: "carol" });
      const notices = createClient(ChatService, conn).notices();
      await until(() => conn.state === "open", "carol to connect");
      await until(() => a!.server.locate("carol").some((e) => e.node === b!.server.nodeId && e.sessions === 1), "node A to learn of carol's session");
      expect(a!.server.locate("carol")).toEqual([{ node: b!.server.nodeId, sessions: 1, connections: 1 }]);
      const n = a!.server.push(ChatService.events.notices, "carol", { text: "hello from A", roomId: "r" });
      expect(n).toBe(1);
      const it = notices[Symbol.asyncIterator]();
      const first = await it.next();
      expect(first.value?.text).toBe("hello from A");
    }, 20_000);

    it("a kick on one node removes the principal's sessions from the channel on every node", async () => {
      const [a, b] = await cluster(2);
      const room = uniqueName("kick");
      const sub = createClient(ChatService, b!.client({ token: "mallory" })).roomEvents({ roomId: room });
      await sub.ready;
      const outcome = (async () => {
        try {
          for await (const _ of sub);
          return "ended";
        } catch (e) {
          return (e as { code?: number }).code;
        }
      })();
      // Node A has no member there: it removes none itself, node B removes Mallory.
      expect(a!.server.kick(ChatService.channels.roomEvents, { roomId: room }, { principalId: "mallory" })).toBe(0);
      expect(await outcome).toBe(Code.PermissionDenied);
      await until(() => b!.server.channels(ChatService.channels.roomEvents).length === 0, "node B to drop the channel");
    }, 20_000);

    it("the per-principal connection limit holds across nodes", async () => {
      const [a, b] = await cluster(2, { maxConnectionsPerPrincipal: 2 });
      const c1 = a!.client({ token: "dave" });
      const c2 = b!.client({ token: "dave" });
      await until(() => c1.state === "open" && c2.state === "open", "two connections");
      await until(() => a!.server.connectionsOf("dave") === 2 && b!.server.connectionsOf("dave") === 2, "both nodes to count two");
      const c3 = a!.client({ token: "dave", reconnect: false });
      const err = await new Promise<unknown>((resolve) => c3.on("error", resolve));
      expect((err as { closeCode?: number }).closeCode).toBe(4006);
    }, 20_000);

    it("a retried exactly-once call runs once even when the retry lands on another node", async () => {
      const [a, b] = await cluster(2);
      const key = uniqueName("idem");
      const room = uniqueName("idem");
      const first = await createClient(ChatService, a!.client({ token: "erin" })).sendMessage({ roomId: room, text: `once-${key}` }, { idempotencyKey: key });
      const again = await createClient(ChatService, b!.client({ token: "erin" })).sendMessage({ roomId: room, text: `once-${key}` }, { idempotencyKey: key });
      expect(again.messageId).toBe(first.messageId);
      expect(runs.get(`once-${key}`)).toBe(1);
    }, 20_000);
  });
}

/**
 * Cuts a node off from the shared engine without a word, as a crash would: for Redis and NATS
 * its own broker and store connections close; on the embedded broker (shared by the nodes in
 * this process) its session writes are made to fail and the server stops answering.
 */
async function killNode(node: { h: Harness; b: Broker; st: { sessions: SessionStore } }, embedded: boolean): Promise<void> {
  if (embedded) {
    // The in-process nodes share one broker object: there is no connection to cut. The
    // node's share of the store refuses its writes from now on.
    const store = node.st.sessions as SessionStore & { write: SessionStore["write"] };
    const write = store.write.bind(store);
    const owner = node.h.server.nodeId;
    store.write = (o, w, t) => (o === owner ? Promise.reject(new Error("node is dead")) : write(o, w, t));
    await node.h.server.close({ deadlineMs: 0 });
    return;
  }
  // It takes no new connections either (the balancer moves on to the next node).
  node.h.server.http.close();
  await node.st.sessions.close();
  await node.b.close();
}
