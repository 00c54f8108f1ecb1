/**
 * Prometheus metrics over real HTTP after real WebSocket traffic. The application routes
 * GET /metrics on its own HTTP server to the metrics handler and hands that server to
 * createServer: that is how a server opts in to a metrics endpoint.
 */
import { createServer as createHttpServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, ProtocastError, connect, createClient, createServer, type Connection, type ProtocastServer } from "protocast/node";
import { ChatService } from "../../generated/acme/chat/v1/chat_protocast.js";
import { createMetrics, type ProtocastMetrics } from "../../runtime/adapters/ops/metrics.js";
import { until } from "../support/harness.js";
import { startTcpProxy, type TcpProxy } from "../support/tcp-proxy.js";
import { openSession } from "../hostile/raw-session.js";
import { outcomeOf, upgradeRequest } from "../hostile/raw-ws.js";
import { parseSamples, value, type Sample } from "./prom-text.js";

function get(port: number, path: string, method = "GET"): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, method }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, type: String(res.headers["content-type"]), body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("metrics endpoint", () => {
  let http: Server;
  let server: ProtocastServer;
  let metrics: ProtocastMetrics;
  let port = 0;
  let proxy: TcpProxy;
  const conns: Connection[] = [];

  beforeAll(async () => {
    metrics = createMetrics();
    http = createHttpServer((req, res) => {
      if (req.url === "/metrics") return metrics.handler(req, res);
      res.writeHead(404).end();
    });
    server = createServer({
      http,
      observer: metrics.observer,
      maxSubscriptionsPerConnection: 1,
      authenticate: (req) => {
        if (req.token === undefined || req.token === "wrong") throw new ProtocastError(Code.Unauthenticated, "bad credential");
        return { id: req.token, scopes: ["chat"] };
      },
    });
    metrics.attach(server);
    server.implement(ChatService, {
      async sendMessage(req, ctx) {
        await new Promise((r) => setTimeout(r, 5)); // a call that takes time, for the latency histogram
        await ctx.publish(ChatService.channels.roomEvents, { roomId: req.roomId }, { text: req.text, author: ctx.principal.id });
        return { messageId: req.text };
      },
      listRooms: () => {
        throw new ProtocastError(Code.NotFound, "no rooms today");
      },
    });
    await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
    port = (http.address() as AddressInfo).port;
    proxy = await startTcpProxy(port);
  });
  afterAll(async () => {
    await Promise.all(conns.map((c) => c.close()));
    await proxy.close();
    await server.close({ deadlineMs: 0 });
    await new Promise<void>((r) => http.close(() => r()));
  });

  const scrape = async (): Promise<Sample[]> => {
    const r = await get(port, "/metrics");
    expect(r.status).toBe(200);
    expect(r.type).toContain("text/plain");
    return parseSamples(r.body);
  };

  it("exposes every metric, at zero before any traffic", async () => {
    const s = await scrape();
    const names = new Set(s.map((x) => x.name));
    for (const n of ["connections", "sessions", "channels", "acks_pending", "idempotency_records", "messages_in_total", "messages_out_total", "bytes_in_total", "bytes_out_total", "retransmits_total", "dedupe_hits_total", "resumes_total", "auth_failures_total"]) {
      expect(names, n).toContain(`protocast_${n}`);
      expect(value(s, `protocast_${n}`), n).toBe(0);
    }
  });

  it("moves counters, gauges and the latency histogram with real traffic", async () => {
    const client = (token: string, url = `ws://127.0.0.1:${port}/protocast`): Connection => {
      const c = connect(url, { token, reconnect: { baseMs: 20, capMs: 100 } });
      conns.push(c);
      return c;
    };
    const alice = createClient(ChatService, client("alice"));
    for (let i = 0; i < 5; i++) await alice.sendMessage({ roomId: "lobby", text: `m${i}` });
    await alice.sendMessage({ roomId: "lobby", text: "dup" }, { idempotencyKey: "same" });
    await alice.sendMessage({ roomId: "lobby", text: "dup" }, { idempotencyKey: "same" });
    await expect(alice.listRooms({})).rejects.toMatchObject({ code: Code.NotFound });
    await alice.roomEvents({ roomId: "lobby" }).ready;
    await expect(alice.typing({ roomId: "lobby" }).ready).rejects.toMatchObject({ reason: "max_subscriptions" });
    // A refused upgrade, a protocol violation, and a session resumed after its link was cut.
    expect((await outcomeOf(port, upgradeRequest({ headers: [["Authorization", "Bearer wrong"]] }))).code).toBe(4502);
    const raw = await openSession(port, { headers: [["Authorization", "Bearer mallory"]] });
    raw.sendBytes(Uint8Array.from([0xff, 0xff, 0xff]));
    expect((await raw.raw.ended).code).toBe(4500);
    const bob = client("bob", `ws://127.0.0.1:${proxy.port}/protocast`);
    const bobChat = createClient(ChatService, bob);
    await bobChat.roomEvents({ roomId: "bob-room" }).ready;
    proxy.cut();
    await until(() => server.stats().counters.resumes >= 1, "bob's resume");

    const s = await scrape();
    expect(value(s, "protocast_connections")).toBe(2);
    expect(value(s, "protocast_sessions")).toBe(2);
    expect(value(s, "protocast_channels")).toBe(2);
    expect(value(s, "protocast_idempotency_records")).toBeGreaterThanOrEqual(6);
    expect(value(s, "protocast_messages_in_total")).toBeGreaterThanOrEqual(12);
    expect(value(s, "protocast_messages_out_total")).toBeGreaterThanOrEqual(12);
    expect(value(s, "protocast_bytes_in_total")).toBeGreaterThan(value(s, "protocast_messages_in_total"));
    expect(value(s, "protocast_bytes_out_total")).toBeGreaterThan(value(s, "protocast_messages_out_total"));
    expect(value(s, "protocast_dedupe_hits_total")).toBe(1);
    expect(value(s, "protocast_resumes_total")).toBe(1);
    expect(value(s, "protocast_auth_failures_total")).toBe(1);
    expect(value(s, "protocast_limit_hits_total", { limit: "max_subscriptions" })).toBe(1);
    expect(value(s, "protocast_closes_total", { code: "4500" })).toBe(1);
    expect(value(s, "protocast_closes_total", { code: "1006" })).toBe(1); // bob's cut link
    // Seven answers: five messages, the keyed one, and its duplicate answered from the window.
    const send = { method: "acme.chat.v1.ChatService/SendMessage", code: "ok" };
    expect(value(s, "protocast_rpc_duration_seconds_count", send)).toBe(7);
    expect(value(s, "protocast_rpc_duration_seconds_sum", send)).toBeGreaterThanOrEqual(6 * 0.004);
    // Only the duplicate, answered from the window, can beat the handler's 5 ms sleep.
    expect(value(s, "protocast_rpc_duration_seconds_bucket", { ...send, le: "0.0025" })).toBeLessThanOrEqual(1);
    expect(value(s, "protocast_rpc_duration_seconds_bucket", { ...send, le: "+Inf" })).toBe(7);
    expect(value(s, "protocast_rpc_duration_seconds_count", { method: "acme.chat.v1.ChatService/ListRooms", code: "not_found" })).toBe(1);
    // A later scrape sees later traffic: values are read at scrape time, not cached.
    await alice.sendMessage({ roomId: "lobby", text: "later" });
    expect(value(await scrape(), "protocast_rpc_duration_seconds_count", send)).toBe(8);
  });

  it("counts close codes a client made up under code=\"other\", so a client cannot mint series", async () => {
    const before = value(await scrape(), "protocast_closes_total", { code: "other" });
    for (const code of [3999, 4321, 4999]) {
      const s = await openSession(port, { headers: [["Authorization", "Bearer carol"]] });
      s.raw.close(code);
      await s.raw.ended;
    }
    await until(() => server.stats().connections === 2, "the three closes");
    const s = await scrape();
    expect(value(s, "protocast_closes_total", { code: "other" }) - before).toBe(3);
    expect(s.filter((x) => x.name === "protocast_closes_total").map((x) => x.labels["code"])).not.toContain("4321");
  });

  it("answers other methods with 405", async () => {
    expect((await get(port, "/metrics", "POST")).status).toBe(405);
    const head = await get(port, "/metrics", "HEAD");
    expect(head.status).toBe(200);
    expect(head.body).toBe("");
  });

  it("observes calls only: every other value is read from server.stats() at scrape time", () => {
    expect(Object.keys(metrics.observer)).toEqual(["callFinished"]);
  });
});

describe("metrics options", () => {
  it("registers in a given registry under a given prefix, and sums attached servers", async () => {
    const registry = new Registry();
    const m = createMetrics({ registry, prefix: "chat_" });
    const a = createServer();
    const b = createServer();
    m.attach(a);
    m.attach(b);
    m.attach(a);
    const [pa, pb] = [await a.listen(), await b.listen()];
    const ca = connect(`ws://127.0.0.1:${pa.port}/protocast`, { reconnect: false });
    const cb = connect(`ws://127.0.0.1:${pb.port}/protocast`, { reconnect: false });
    await Promise.all([ca.opened(), cb.opened()]);
    const s = parseSamples(await registry.metrics());
    expect(s.every((x) => x.name.startsWith("chat_"))).toBe(true);
    expect(value(s, "chat_connections")).toBe(2);
    expect(value(s, "chat_messages_in_total")).toBe(2);
    await Promise.all([ca.close(), cb.close()]);
    await Promise.all([a.close({ deadlineMs: 0 }), b.close({ deadlineMs: 0 })]);
  });
});
