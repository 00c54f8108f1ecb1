/**
 * Hostile upgrade requests, on raw sockets: absurd headers, dripping handshakes, an
 * authenticate hook that never answers, foreign origins. None may ever get a 101, and a
 * normal client must still connect meanwhile (PROTOCOL.md sections 2.4 to 2.6).
 */
import { connect as tcpConnect, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, ProtocastError } from "protocast/node";
import type { Harness } from "../support/harness.js";
import { normalClientWorks, startChat } from "./chat-server.js";
import { exchange, openRaw, upgradeRequest } from "./raw-ws.js";

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
      await new Promise((r) => setTimeout(r, 300));
      const t = Date.now();
      await normalClientWorks(h);
      const normalMs = Date.now() - t;
      // The timeout is 1 s; allow the server's periodic check to come round a few times.
      const end = Date.now() + 6_000;
      while (drips.some((d) => d.closedAfterMs < 0) && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
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

  it("answers 503 with Retry-After by the handshake timeout (PROTOCOL.md 2.4), never 101", async () => {
    const t = Date.now();
    const r = await exchange(h.port, upgradeRequest(), 5_000);
    const elapsed = Date.now() - t;
    expect(calls).toBe(1);
    expect(r.status).not.toBe(101);
    expect(elapsed).toBeGreaterThanOrEqual(450);
    expect(elapsed).toBeLessThan(2_000);
    expect(r.status).toBe(503);
    expect(r.text).toMatch(/\r\nRetry-After: \d+\r\n/i);
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

  const attempt = async (origin: string | undefined, auth: [string, string]): Promise<number> => {
    const headers: [string, string][] = [auth];
    if (origin !== undefined) headers.push(["Origin", origin]);
    const raw = await openRaw(h.port, upgradeRequest({ headers }));
    raw.socket.destroy();
    return raw.status;
  };

  it.each([
    ["a foreign", "https://evil.example"],
    ["the \"null\"", "null"],
    ["a look-alike", "https://app.example.evil.example"],
    ["a different scheme of the same", "http://app.example"],
    ["no", undefined],
  ])("refuses a cookie-authenticated request with %s Origin with 403, before asking the hook", async (_what, origin) => {
    const before = hookCalls;
    expect(await attempt(origin, ["Cookie", "session=alice"])).toBe(403);
    expect(hookCalls).toBe(before);
  });

  it("answers a refused credential with 401 and WWW-Authenticate: Bearer (PROTOCOL.md 2.4), not a WebSocket", async () => {
    const r = await exchange(h.port, upgradeRequest({ headers: [["Origin", APP]] }));
    expect(r.status).toBe(401);
    expect(r.text).toMatch(/\r\nWWW-Authenticate: Bearer/i);
  });

  it("refuses a bearer-authenticated request from a foreign Origin with 403 too", async () => {
    expect(await attempt("https://evil.example", ["Authorization", "Bearer bob"])).toBe(403);
  });

  it("upgrades a cookie-authenticated request from the allowed Origin", async () => {
    expect(await attempt(APP, ["Cookie", "session=alice"])).toBe(101);
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

  const attempt = async (origin: string | undefined, auth: [string, string]): Promise<number> => {
    const headers: [string, string][] = [auth];
    if (origin !== undefined) headers.push(["Origin", origin]);
    const raw = await openRaw(h.port, upgradeRequest({ headers }));
    raw.socket.destroy();
    return raw.status;
  };

  it.each([
    ["a foreign", "https://evil.example"],
    ["the \"null\"", "null"],
    ["no", undefined],
  ])("refuses a request carrying cookies with %s Origin with 403", async (_what, origin) => {
    expect(await attempt(origin, ["Cookie", "session=alice"])).toBe(403);
  });

  it("upgrades a request carrying cookies from the server's own origin", async () => {
    expect(await attempt("http://127.0.0.1", ["Cookie", "session=alice"])).toBe(101);
  });

  it("upgrades a bearer request without cookies from any origin (a Node client or a browser sending no cookie)", async () => {
    expect(await attempt("https://elsewhere.example", ["Authorization", "Bearer bob"])).toBe(101);
    expect(await attempt(undefined, ["Authorization", "Bearer bob"])).toBe(101);
  });
});
