/**
 * A canary credential, a unique random string, travels every way a credential can: bearer
 * header, subprotocol token, cookie, query parameter (with allowQueryToken on), in-band
 * refresh; accepted once and refused once per way. It must appear nowhere in the connection
 * logs or the metrics, in any encoding, and neither may a session's resume token, while
 * every refusal is still logged.
 */
import { randomUUID } from "node:crypto";
import { createServer as createHttpServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, ProtocastError, connect, createClient, createServer, type ProtocastServer, type WebSocketLike } from "protocast/node";
import { ChatService } from "../../generated/acme/chat/v1/chat_protocast.js";
import { createMetrics, type ProtocastMetrics } from "../../runtime/adapters/ops/metrics.js";
import { pinoConnectionLogger } from "../../runtime/adapters/ops/pino-logger.js";
import { tokenProtocol } from "../../runtime/client/websocket-transport.js";
import { until } from "../support/harness.js";
import { openSession } from "../hostile/raw-session.js";
import { outcomeOf, upgradeRequest } from "../hostile/raw-ws.js";
import { captureLogs, type CapturedLogs } from "./log-capture.js";

describe("a canary credential", () => {
  const good = `ok-canary-${randomUUID()}`;
  const bad = `no-canary-${randomUUID()}`;
  let http: Server;
  let server: ProtocastServer;
  let metrics: ProtocastMetrics;
  let logs: CapturedLogs;
  let port = 0;
  let url = "";
  let users = 0;

  beforeAll(async () => {
    logs = captureLogs();
    metrics = createMetrics();
    http = createHttpServer((req, res) => (req.url === "/metrics" ? metrics.handler(req, res) : res.writeHead(404).end()));
    server = createServer({
      http,
      allowQueryToken: true,
      logger: pinoConnectionLogger(logs.logger),
      observer: metrics.observer,
      authenticate: (req) => {
        const cookie = /(?:^|;\s*)session=([^;]+)/.exec(req.headers.cookie ?? "")?.[1];
        const credential = req.token ?? cookie;
        // The message names no credential; the principal id is not derived from it.
        if (credential === undefined || !credential.startsWith("ok-")) throw new ProtocastError(Code.Unauthenticated, "credential refused");
        return { id: `user-${++users}`, scopes: ["chat"] };
      },
    });
    metrics.attach(server);
    server.implement(ChatService, { sendMessage: (req) => ({ messageId: req.text }), listRooms: () => ({ rooms: [] }) });
    await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
    port = (http.address() as AddressInfo).port;
    url = `ws://127.0.0.1:${port}/protocast`;
  });
  afterAll(async () => {
    await server.close({ deadlineMs: 0 });
    await new Promise<void>((r) => http.close(() => r()));
  });

  /** A client whose upgrade request carries extra headers (a bearer token, a cookie). */
  const withHeaders = (headers: Record<string, string>) => (u: string, protocols: string[]) =>
    new WebSocket(u, protocols, { headers, perMessageDeflate: false }) as unknown as WebSocketLike;

  it("is never written to logs or metrics, whichever way it travels, accepted or refused", async () => {
    const ways: { name: string; open: (credential: string) => ReturnType<typeof connect> }[] = [
      { name: "bearer", open: (c) => connect(url, { reconnect: false, webSocket: withHeaders({ authorization: `Bearer ${c}` }) }) },
      { name: "subprotocol", open: (c) => connect(url, { reconnect: false, token: c }) },
      { name: "cookie", open: (c) => connect(url, { reconnect: false, webSocket: withHeaders({ cookie: `theme=dark; session=${c}`, origin: `http://127.0.0.1:${port}` }) }) },
      { name: "query", open: (c) => connect(`${url}?room=lobby&token=${encodeURIComponent(c)}`, { reconnect: false }) },
    ];
    for (const way of ways) {
      const conn = way.open(good);
      await createClient(ChatService, conn).sendMessage({ roomId: "r", text: way.name });
      await conn.close();
      const refusedBefore = logs.lines.filter((l) => l["event"] === "auth_failure").length;
      const refused = way.open(bad);
      await expect(refused.opened(), way.name).rejects.toBeDefined();
      await refused.close();
      await until(() => logs.lines.filter((l) => l["event"] === "auth_failure").length > refusedBefore, `the ${way.name} refusal in the log`);
    }
    // The same ways on raw sockets, so that the request is exactly what was meant (their Host
    // header is 127.0.0.1, without the port, hence that Origin for the cookie).
    // Refused after 101 with 4502, a close reason that must not hold the canary either.
    const reasons: string[] = [];
    const refusedRaw = async (spec: Parameters<typeof upgradeRequest>[0]): Promise<void> => {
      const r = await outcomeOf(port, upgradeRequest(spec));
      expect(r).toMatchObject({ status: 101, code: 4502 });
      reasons.push(r.reason);
    };
    for (const headers of [[["Authorization", `Bearer ${bad}`]], [["Cookie", `session=${bad}`], ["Origin", "http://127.0.0.1"]]] as [string, string][][]) {
      await refusedRaw({ headers });
    }
    await refusedRaw({ path: `/protocast?token=${bad}` });
    await refusedRaw({ protocols: ["protocast.v1", tokenProtocol(bad)] });
    expect(reasons.join("\n")).not.toContain(bad.slice(3));

    // A resume token, a resume with it, a violation, and an in-band refresh with the canary.
    const first = await openSession(port, { headers: [["Authorization", `Bearer ${good}`]] });
    const { sessionId, resumeToken } = first.welcome;
    first.raw.socket.destroy();
    const again = await openSession(port, { headers: [["Authorization", `Bearer ${good}`]] });
    again.sendFrame({ case: "resume", value: { version: 1, sessionId, resumeToken, lastSeq: 0, client: "canary" } });
    expect((await again.raw.ended).code).toBe(4500); // a second Resume on a connection that said Hello
    const refresher = await openSession(port, { headers: [["Authorization", `Bearer ${good}`]] });
    refresher.sendFrame({ case: "authRefresh", value: { id: 1, token: bad } });
    expect((await refresher.raw.ended).code).toBe(4502);
    await until(() => logs.lines.some((l) => l["event"] === "auth_refresh_failed"), "the refused refresh in the log");

    const scraped = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const logText = logs.text();
    for (const secret of [good, bad, resumeToken]) {
      for (const form of new Set([secret, encodeURIComponent(secret), Buffer.from(secret).toString("base64url"), tokenProtocol(secret)])) {
        expect(logText.includes(form), `log holds ${form}`).toBe(false);
        expect(scraped.includes(form), `metrics hold ${form}`).toBe(false);
      }
    }
    // Every refusal is still there: 4 through the client, 4 raw, one refresh.
    expect(logs.lines.filter((l) => l["event"] === "auth_failure" && l["status"] === 401)).toHaveLength(8);
    expect(logs.lines.filter((l) => l["event"] === "auth_refresh_failed")).toHaveLength(1);
    expect(scraped).toMatch(/^protocast_auth_failures_total 8$/m);
  });
});
