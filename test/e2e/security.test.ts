import { describe, expect, it } from "vitest";
import WebSocket from "ws";
import { Code, CloseCode, ProtocastError, connect, createClient, type Principal } from "protocast/node";
import { ChatService } from "../../generated/acme/chat/v1/chat_protocast.js";
import { startHarness, until } from "../support/harness.js";

const handlers = {
  sendMessage: () => ({ messageId: "m" }),
  listRooms: () => ({ rooms: [] }),
};

/**
 * Opens a raw upgrade offering protocast.v1 with extra headers and reports the HTTP status
 * of a plain refusal, the close code of a refusal right after 101, or "open".
 */
function rawUpgrade(url: string, headers: Record<string, string>, protocols = ["protocast.v1"]): Promise<number | "open"> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, protocols, { headers });
    let timer: ReturnType<typeof setTimeout> | undefined;
    ws.once("open", () => {
      // A refusal closes at once; an admitted socket waits for Hello.
      timer = setTimeout(() => {
        ws.terminate();
        resolve("open");
      }, 200);
    });
    ws.once("close", (code) => {
      clearTimeout(timer);
      resolve(code);
    });
    ws.once("unexpected-response", (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.on("error", () => undefined);
  });
}

describe("credentials on a live connection", () => {
  it("refreshes in-band before expiry and keeps the connection; re-checks scopes and kicks what is no longer allowed", async () => {
    // Tokens look like "<user>:<scope>:<lifetime ms>".
    const principalOf = (token: string | undefined): Principal => {
      const [user = "", scope = "", life = "0"] = (token ?? "").split(":");
      if (user === "") throw new ProtocastError(Code.Unauthenticated, "no token");
      return { id: user, scopes: [scope], expiresAtMs: Date.now() + Number(life) };
    };
    const h = await startHarness({ authenticate: (req) => principalOf(req.token), refreshLeadMs: 400 }, (s) => s.implement(ChatService, handlers));
    try {
      let issued = 0;
      // The first token lives 700 ms; refreshed ones keep the user but drop the "chat" scope.
      const conn = h.client({ token: () => (issued++ === 0 ? "alice:chat:700" : "alice:other:60000") });
      const sub = createClient(ChatService, conn).roomEvents({ roomId: "r" });
      await sub.ready;
      const ended = (async () => {
        try {
          for await (const _ of sub);
          return "ended";
        } catch (e) {
          return (e as ProtocastError).code;
        }
      })();
      // Past the first token's expiry the connection is still the same, open one: the expiry
      // (700 ms) passing in real time is what the test is about.
      await new Promise((r) => setTimeout(r, 1_000));
      expect(conn.state).toBe("open");
      expect(issued).toBeGreaterThanOrEqual(2);
      // The refreshed credential lacks "chat": the subscription was removed at once.
      expect(await ended).toBe(Code.PermissionDenied);
    } finally {
      await h.close();
    }
  });

  it("closes with 4005 at expiry when no fresh credential comes, and sends nothing after it", async () => {
    const expiresAt = Date.now() + 600;
    const h = await startHarness({ authenticate: () => ({ id: "bob", scopes: ["chat"], expiresAtMs: expiresAt }), refreshLeadMs: 300 }, (s) =>
      s.implement(ChatService, handlers),
    );
    try {
      const conn = connect(h.url, { reconnect: false });
      const sub = createClient(ChatService, conn).roomEvents({ roomId: "x" });
      await sub.ready;
      // Each event carries the time it was published; the server writes it later still, so an
      // event stamped at or after the expiry would prove a frame written after it. (The time it
      // reaches the reader says nothing: a busy machine can hold a frame written in time.)
      const stamps: number[] = [];
      const reading = (async () => {
        try {
          for await (const e of sub) stamps.push(Number(e.text.slice("tick ".length)));
        } catch {
          /* ends with the connection */
        }
      })();
      const errors: ProtocastError[] = [];
      conn.on("error", (e) => errors.push(e));
      const pump = setInterval(() => void h.server.publish(ChatService.channels.roomEvents, { roomId: "x" }, { text: `tick ${Date.now()}` }), 10);
      await until(() => conn.state === "closed", "the close at expiry", 3_000);
      clearInterval(pump);
      await reading;
      expect(errors[0]?.closeCode).toBe(CloseCode.TokenExpired);
      expect(stamps.length).toBeGreaterThan(0);
      expect(stamps.every(Number.isFinite)).toBe(true);
      expect(Math.max(...stamps)).toBeLessThan(expiresAt);
    } finally {
      await h.close();
    }
  });
});

describe("authorization", () => {
  it("asks the authorize hook on call, subscribe and publish, and kicks at once", async () => {
    const asked: string[] = [];
    const h = await startHarness(
      {
        authenticate: (req) => ({ id: req.token ?? "anon", scopes: ["chat"] }),
        authorize: (r) => {
          asked.push(`${r.action}:${r.channel}`);
          return !(r.params?.["roomId"] === "staff" && r.principal.id !== "admin");
        },
      },
      (s) => s.implement(ChatService, handlers),
    );
    try {
      const eve = createClient(ChatService, h.client({ token: "eve" }));
      await expect(eve.roomEvents({ roomId: "staff" }).ready).rejects.toMatchObject({ code: Code.PermissionDenied });
      await expect(eve.publishTyping({ roomId: "staff" }, { typing: true }, { confirm: true })).rejects.toMatchObject({ code: Code.PermissionDenied });
      await eve.sendMessage({ roomId: "lobby", text: "hi" });
      expect(asked).toEqual(expect.arrayContaining(["subscribe:room/staff", "publish:typing/staff", "call:"]));

      const admin = createClient(ChatService, h.client({ token: "admin" }));
      const sub = admin.roomEvents({ roomId: "staff" });
      await sub.ready;
      const outcome = (async () => {
        try {
          for await (const _ of sub);
          return "ended";
        } catch (e) {
          return (e as ProtocastError).code;
        }
      })();
      expect(h.server.kick(ChatService.channels.roomEvents, { roomId: "staff" }, { principalId: "admin" })).toBe(1);
      expect(await outcome).toBe(Code.PermissionDenied);
      expect(h.server.channels(ChatService.channels.roomEvents)).toEqual([]);
    } finally {
      await h.close();
    }
  });
});

describe("limits", () => {
  it("throttles a flooding client with retry advice, closes it with 4004 if it keeps on, and leaves others alone", async () => {
    const h = await startHarness(
      // A slow refill (one frame per 500 ms): even on a loaded machine the server refuses 200
      // frames in a row before the bucket lets one through and resets the count.
      { rateMessagesPerSecond: 2, rateMessagesBurst: 50, rateViolationsBeforeClose: 200 },
      (s) => s.implement(ChatService, handlers),
    );
    try {
      const floodConn = connect(h.url, { reconnect: false });
      const flood = createClient(ChatService, floodConn);
      const calm = createClient(ChatService, h.client());
      const results = await Promise.allSettled(Array.from({ length: 120 }, () => flood.listRooms({})));
      const refused = results.filter((r) => r.status === "rejected").map((r) => (r as PromiseRejectedResult).reason as ProtocastError);
      expect(refused.length).toBeGreaterThan(0);
      expect(refused[0]).toMatchObject({ code: Code.ResourceExhausted, reason: "rate_limited" });
      expect(refused[0]!.retryAfterMs).toBeGreaterThan(0);
      expect(await calm.listRooms({})).toBeDefined();
      const errors: ProtocastError[] = [];
      floodConn.on("error", (e) => errors.push(e));
      await Promise.allSettled(Array.from({ length: 400 }, () => flood.listRooms({})));
      await until(() => floodConn.state === "closed", "the flooder to be closed");
      expect(errors[0]?.closeCode).toBe(CloseCode.RateLimited);
      expect(await calm.listRooms({})).toBeDefined();
    } finally {
      await h.close();
    }
  });

  it("closes connections past the per-principal limit with 4006", async () => {
    const h = await startHarness({ authenticate: () => ({ id: "same", scopes: ["chat"] }), maxConnectionsPerPrincipal: 2 }, (s) =>
      s.implement(ChatService, handlers),
    );
    try {
      await h.client().opened();
      await h.client().opened();
      const third = connect(h.url, { reconnect: false });
      const err = await new Promise<ProtocastError>((resolve) => third.on("error", resolve));
      expect(err.closeCode).toBe(CloseCode.TooManyConnections);
    } finally {
      await h.close();
    }
  });
});

describe("upgrade checks", () => {
  it("refuses cross-site requests with cookies, and origins off the allow-list", async () => {
    const open = await startHarness({}, (s) => s.implement(ChatService, handlers));
    const listed = await startHarness({ allowedOrigins: ["https://app.example"] }, (s) => s.implement(ChatService, handlers));
    try {
      const host = `127.0.0.1:${open.port}`;
      expect(await rawUpgrade(open.url, { cookie: "sid=1", origin: "https://evil.example" })).toBe(CloseCode.Forbidden);
      expect(await rawUpgrade(open.url, { cookie: "sid=1", origin: "null" })).toBe(CloseCode.Forbidden);
      expect(await rawUpgrade(open.url, { cookie: "sid=1" })).toBe(CloseCode.Forbidden);
      expect(await rawUpgrade(open.url, { cookie: "sid=1", origin: `http://${host}` })).toBe("open");
      expect(await rawUpgrade(open.url, { origin: "https://elsewhere.example" })).toBe("open");
      expect(await rawUpgrade(listed.url, { origin: "https://evil.example" })).toBe(CloseCode.Forbidden);
      expect(await rawUpgrade(listed.url, {})).toBe(CloseCode.Forbidden);
      // Without a protocast version offered, the refusal stays a plain HTTP status.
      expect(await rawUpgrade(listed.url, { origin: "https://evil.example" }, ["chat"])).toBe(400);
      expect(await rawUpgrade(listed.url, { origin: "https://app.example" })).toBe("open");
    } finally {
      await open.close();
      await listed.close();
    }
  });

  it("closes with 4007 when the authenticate hook never answers, and 4502 when it refuses", async () => {
    const h = await startHarness(
      {
        handshakeTimeoutMs: 300,
        authenticate: (req) => {
          if (req.token === "hang") return new Promise<Principal>(() => undefined);
          throw new ProtocastError(Code.Unauthenticated, "bad token");
        },
      },
      (s) => s.implement(ChatService, handlers),
    );
    try {
      expect(await rawUpgrade(h.url, { authorization: "Bearer hang" })).toBe(CloseCode.TryLater);
      expect(await rawUpgrade(h.url, { authorization: "Bearer nope" })).toBe(CloseCode.Unauthorized);
    } finally {
      await h.close();
    }
  });
});

describe("graceful shutdown", () => {
  it("lets a running call finish, sends goaway, then closes with 1001", async () => {
    let release: (() => void) | undefined;
    const h = await startHarness({}, (s) =>
      s.implement(ChatService, {
        ...handlers,
        listRooms: () => new Promise((resolve) => (release = () => resolve({ rooms: [{ roomId: "done", members: 1 }] }))),
      }),
    );
    const conn = h.client({ reconnect: false });
    const chat = createClient(ChatService, conn);
    await conn.opened();
    const running = chat.listRooms({});
    await until(() => release !== undefined, "the call to start");
    const closing = h.server.close({ deadlineMs: 2_000 });
    setTimeout(() => release?.(), 200);
    expect((await running).rooms[0]?.roomId).toBe("done");
    await closing;
    await until(() => conn.state === "closed", "the client to see the close");
    await h.close();
  });
});
