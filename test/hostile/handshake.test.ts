/**
 * Hostile upgrade requests, on raw sockets: absurd headers, dripping handshakes, an
 * authenticate hook that never answers, foreign origins. None may ever reach a session: absurd
 * requests get a plain HTTP refusal, refused ones that offered protocast a 101 closed at once
 * with the refusal's code and no envelope, and a normal client must still connect meanwhile
 * (PROTOCOL.md sections 2.4 to 2.6).
 */
import { connect as tcpConnect, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, ProtocastError } from "protocast/node";
import type { Harness } from "../support/harness.js";
import { until } from "../support/wait.js";
import { normalClientWorks, startChat } from "./chat-server.js";
import { exchange, outcomeOf, upgradeRequest } from "./raw-ws.js";

const many = (n: number, header: (i: number) => [string, string]): [string, string][] => Array.from({ length: n }, (_, i) => header(i));

describe("oversized upgrade requests", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startChat();
  });
  afterAll(() => h.close());

  it("refuses 2,000 headers of ordinary size (about 50 KB) with 431", async () => {
    const r = await exchange(h.port, upgradeRequest({ headers: many(2_000, (i) => [`X-Filler-${i}`, `value-${i}`]) }));
    expect(r.status).toBe(431);
    await normalClientWorks(h);
  });

  it("refuses 2,000 one-letter headers (12 KB, under Node's 16 KiB header-size limit)", async () => {
    // Node's parser keeps the first 2,000 headers (maxHeadersCount) and refuses nothing under
    // 16 KiB, so only the server itself can refuse this request.
    const r = await exchange(h.port, upgradeRequest({ headers: many(2_000, () => ["a", "b"]) }), 2_000);
    expect(r.status).not.toBe(101);
    expect(r.status === 431 || r.status === 400 || (r.status === 0 && r.closedByServer)).toBe(true);
    await normalClientWorks(h);
  });

  it("refuses a 100 KB Sec-WebSocket-Protocol with 431", async () => {
    const r = await exchange(h.port, upgradeRequest({ protocols: ["protocast.v1", `protocast.token.${"A".repeat(100_000)}`] }));
    expect(r.status).toBe(431);
    await normalClientWorks(h);
  });
});

describe("500 dripping handshakes", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startChat({ handshakeTimeoutMs: 1_000 });
  });
  afterAll(() => h.close());

  it("closes every one by the handshake timeout while a normal client connects", { timeout: 20_000 }, async () => {
    const COUNT = 500;
    const request = upgradeRequest();
    const started = Date.now();
    const drips = Array.from({ length: COUNT }, () => {
      const socket: Socket = tcpConnect(h.port, "127.0.0.1");
      const d = { socket, sent: 0, answer: "", closedAfterMs: -1 };
      socket.on("data", (c: Buffer) => (d.answer += c.toString("latin1")));
      socket.on("error", () => undefined);
      socket.on("close", () => (d.closedAfterMs = Date.now() - started));
      return d;
    });
    // One header byte every 200 ms: the whole request would take about 40 s.
    const drip = (): void => {
      for (const d of drips) if (d.closedAfterMs < 0 && !d.socket.destroyed && d.sent < request.length) d.socket.write(request[d.sent++]!);
    };
    drip();
    const timer = setInterval(drip, 200);
    try {
      await new Promise((r) => setTimeout(r, 300)); // the drips are under way: real time is the attack
      const t = Date.now();
      await normalClientWorks(h);
      const normalMs = Date.now() - t;
      // The timeout is 1 s; allow the server's periodic check to come round a few times.
      await until(() => drips.every((d) => d.closedAfterMs >= 0), "every dripping handshake to be closed", 6_000).catch(() => undefined);
      const closed = drips.filter((d) => d.closedAfterMs >= 0).map((d) => d.closedAfterMs).sort((a, b) => a - b);
      const answers = new Map<string, number>();
      for (const d of drips) {
        const status = /^HTTP\/1\.1 (\d{3})/.exec(d.answer)?.[1] ?? (d.answer === "" ? "nothing" : "garbage");
        answers.set(status, (answers.get(status) ?? 0) + 1);
      }
      console.log(
        `dripping handshakes: ${closed.length}/${COUNT} closed; after ms min ${closed[0] ?? "-"}, median ${closed[closed.length >> 1] ?? "-"}, max ${closed[closed.length - 1] ?? "-"}; answers ${JSON.stringify(Object.fromEntries(answers))}; normal client round trip ${normalMs} ms`,
      );
      expect(answers.get("101") ?? 0).toBe(0);
      expect(closed.length).toBe(COUNT);
      expect(closed[closed.length - 1]!).toBeLessThan(4_000);
    } finally {
      clearInterval(timer);
      for (const d of drips) d.socket.destroy();
    }
  });
});

describe("an authenticate hook that never answers", () => {
  let h: Harness;
  let calls = 0;
  beforeAll(async () => {
    h = await startChat({
      handshakeTimeoutMs: 500,
      authenticate: (req) => {
        if (req.token === "fine") return { id: "fine", scopes: ["chat"] };
        calls++;
        return new Promise(() => undefined);
      },
    });
  });
  afterAll(() => h.close());

  it("closes with 4007 auth_timeout right after 101 by the handshake timeout (PROTOCOL.md 2.4), before any envelope", async () => {
    const t = Date.now();
    const r = await outcomeOf(h.port, upgradeRequest(), 5_000);
    const elapsed = Date.now() - t;
    expect(calls).toBe(1);
    expect(elapsed).toBeGreaterThanOrEqual(450);
    expect(elapsed).toBeLessThan(2_000);
    expect(r).toMatchObject({ status: 101, code: 4007, messages: 0 });
    expect(r.reason).toMatch(/^auth_timeout: /);
    await normalClientWorks(h, "fine");
  });
});

describe("origins", () => {
  let h: Harness;
  let hookCalls = 0;
  const APP = "https://app.example";
  beforeAll(async () => {
    h = await startChat({
      allowedOrigins: [APP],
      authenticate: (req) => {
        hookCalls++;
        const session = /(?:^|;\s*)session=([^;]+)/.exec(req.headers.cookie ?? "")?.[1];
        if (session !== undefined) return { id: session, scopes: ["chat"] };
        if (req.token !== undefined) return { id: req.token, scopes: ["chat"] };
        throw new ProtocastError(Code.Unauthenticated, "sign in first");
      },
    });
  });
  afterAll(() => h.close());

  it.each([
    ["a foreign", "https://evil.example"],
    ["the \"null\"", "null"],
    ["a look-alike", "https://app.example.evil.example"],
    ["a different scheme of the same", "http://app.example"],
    ["no", undefined],
  ])("refuses a cookie-authenticated request with %s Origin with 4503 origin_not_allowed, before asking the hook", async (_what, origin) => {
    const before = hookCalls;
    const r = await attempt(h.port, origin, ["Cookie", "session=alice"]);
    expect(r).toMatchObject({ status: 101, code: 4503, messages: 0 });
    expect(r.reason).toMatch(/^origin_not_allowed: /);
    expect(hookCalls).toBe(before);
  });

  it("closes a refused credential with 4502 unauthenticated and the hook's message (PROTOCOL.md 2.4), before any envelope", async () => {
    const r = await outcomeOf(h.port, upgradeRequest({ headers: [["Origin", APP]] }));
    expect(r).toMatchObject({ status: 101, code: 4502, reason: "unauthenticated: sign in first", messages: 0 });
    expect(r.head).toMatch(/\r\nSec-WebSocket-Protocol: protocast\.v1(\r\n|$)/i);
  });

  it("answers a request that offers no protocast version with a plain 400, whatever its credential", async () => {
    const r = await exchange(h.port, upgradeRequest({ protocols: [], headers: [["Origin", "https://evil.example"]] }));
    expect(r.status).toBe(400);
    expect(r.text).toMatch(/no_subprotocol: offer the protocast\.v1 subprotocol/);
  });

  it("refuses a bearer-authenticated request from a foreign Origin with 4503 too", async () => {
    expect((await attempt(h.port, "https://evil.example", ["Authorization", "Bearer bob"])).code).toBe(4503);
  });

  it("upgrades a cookie-authenticated request from the allowed Origin", async () => {
    expect(await attempt(h.port, APP, ["Cookie", "session=alice"])).toMatchObject({ status: 101, code: undefined });
  });
});

describe("cookies without an origin allow-list", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startChat({
      authenticate: (req) => {
        const session = /(?:^|;\s*)session=([^;]+)/.exec(req.headers.cookie ?? "")?.[1];
        const id = session ?? req.token;
        if (id === undefined) throw new ProtocastError(Code.Unauthenticated, "sign in first");
        return { id, scopes: ["chat"] };
      },
    });
  });
  afterAll(() => h.close());

  it.each([
    ["a foreign", "https://evil.example"],
    ["the \"null\"", "null"],
    ["no", undefined],
  ])("refuses a request carrying cookies with %s Origin with 4503", async (_what, origin) => {
    expect(await attempt(h.port, origin, ["Cookie", "session=alice"])).toMatchObject({ status: 101, code: 4503, messages: 0 });
  });

  it("upgrades a request carrying cookies from the server's own origin", async () => {
    expect(await attempt(h.port, "http://127.0.0.1", ["Cookie", "session=alice"])).toMatchObject({ status: 101, code: undefined });
  });

  it("upgrades a bearer request without cookies from any origin (a Node client or a browser sending no cookie)", async () => {
    expect((await attempt(h.port, "https://elsewhere.example", ["Authorization", "Bearer bob"])).code).toBeUndefined();
    expect((await attempt(h.port, undefined, ["Authorization", "Bearer bob"])).code).toBeUndefined();
  });
});

/** An upgrade with one credential header and an optional Origin, and how it was answered. */
function attempt(port: number, origin: string | undefined, auth: [string, string]): ReturnType<typeof outcomeOf> {
  const headers: [string, string][] = [auth];
  if (origin !== undefined) headers.push(["Origin", origin]);
  return outcomeOf(port, upgradeRequest({ headers }));
}

describe("plain HTTP answers for requests that offer no protocast version (PROTOCOL.md 2.1, 2.4)", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startChat({
      authenticate: (req) => {
        if (req.token === "fine") return { id: "fine", scopes: ["chat"] };
        throw new ProtocastError(Code.Unauthenticated, `${"é".repeat(200)} long message`);
      },
    });
  });
  afterAll(() => h.close());

  it("answers a plain GET at the endpoint with 426 and Upgrade: websocket; other paths with 404", async () => {
    const at = await fetch(`http://127.0.0.1:${h.port}/protocast`);
    expect(at.status).toBe(426);
    expect(at.headers.get("upgrade")).toBe("websocket");
    expect((await fetch(`http://127.0.0.1:${h.port}/elsewhere`)).status).toBe(404);
  });

  it("answers an upgrade to an unknown path with 404 without protocast, and with 101 + 4504 with it", async () => {
    expect((await exchange(h.port, upgradeRequest({ path: "/elsewhere", protocols: [] }))).status).toBe(404);
    const r = await outcomeOf(h.port, upgradeRequest({ path: "/elsewhere?token=x" }));
    expect(r).toMatchObject({ status: 101, code: 4504, reason: "unknown_path: no Protocast endpoint at /elsewhere", messages: 0 });
  });

  it("selects an unsupported version offered alone and closes with 4501", async () => {
    const r = await outcomeOf(h.port, upgradeRequest({ protocols: ["protocast.v7", "protocast.token.Zm9v"] }));
    expect(r).toMatchObject({ status: 101, code: 4501, reason: "unsupported_version: this server speaks protocast.v1 only" });
    expect(r.head).toMatch(/\r\nSec-WebSocket-Protocol: protocast\.v7(\r\n|$)/i);
  });

  it("cuts a long refusal message to 123 bytes of UTF-8 on a character boundary", async () => {
    const r = await outcomeOf(h.port, upgradeRequest());
    expect(r.code).toBe(4502);
    expect(r.reason.startsWith("unauthenticated: éé")).toBe(true);
    expect(Buffer.byteLength(r.reason)).toBeLessThanOrEqual(123);
    expect(r.reason).not.toContain("\uFFFD");
  });
});
