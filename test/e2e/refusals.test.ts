/**
 * Connection failures that explain themselves (PROTOCOL.md 2.4, 11.3, 11.4), over real
 * sockets on loopback: every failed attempt emits `error` with a code and a reason; a refusal
 * that retrying cannot fix ends the connection at once (state "closed", no further attempt,
 * pending calls and `ready` promises rejected with it); a retryable one keeps backing off.
 */
import { createServer as createHttpServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it, vi } from "vitest";
import WebSocket from "ws";
import { Code, CloseCode, ProtocastError, connect, createClient, nodeWebSocket, type Connection, type ConnectOptions, type Principal, type WebSocketLike } from "protocast/node";
import { ChatService } from "../../generated/acme/chat/v1/chat_protocast.js";
import { startHarness, until, type Harness } from "../support/harness.js";

const handlers = {
  sendMessage: () => ({ messageId: "m" }),
  listRooms: () => ({ rooms: [] }),
};

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function harness(options: Parameters<typeof startHarness>[0] = {}): Promise<Harness> {
  const h = await startHarness(options, (s) => s.implement(ChatService, handlers));
  cleanups.push(() => h.close());
  return h;
}

/** A client whose every attempt, state and error is recorded. */
function watched(url: string, options: ConnectOptions = {}): { conn: Connection; errors: ProtocastError[]; states: string[] } {
  const conn = connect(url, { reconnect: { baseMs: 20, capMs: 50 }, ...options });
  cleanups.push(() => conn.close());
  const errors: ProtocastError[] = [];
  const states: string[] = [];
  conn.on("error", (e) => errors.push(e));
  conn.on("state", (s) => states.push(s.newState));
  return { conn, errors, states };
}

/** A ws factory that adds headers to the upgrade request (Origin, Authorization). */
const withHeaders = (headers: Record<string, string>) => (u: string, protocols: string[]) =>
  new WebSocket(u, protocols, { headers, perMessageDeflate: false }) as unknown as WebSocketLike;

/** Expects the connection to end for good with `code` and `reason`, fast, after one attempt. */
async function expectFinal(w: ReturnType<typeof watched>, code: Code, reason: string | RegExp): Promise<ProtocastError> {
  const started = Date.now();
  await until(() => w.conn.state === "closed", "the connection to close", 3_000);
  expect(Date.now() - started).toBeLessThan(1_500);
  expect(w.errors).toHaveLength(1);
  const err = w.errors[0]!;
  expect(err).toBeInstanceOf(ProtocastError);
  expect(err.code).toBe(code);
  expect(err.reason).toMatch(reason);
  expect(w.states).not.toContain("reconnecting");
  expect(w.states.at(-1)).toBe("closed");
  return err;
}

describe("refusals that retrying cannot fix", () => {
  it("a bad token: UNAUTHENTICATED (4502) at once; pending calls and sub.ready reject with it; no second attempt", async () => {
    let attempts = 0;
    const h = await harness({
      authenticate: (req): Principal => {
        attempts++;
        if (req.token !== "good") throw new ProtocastError(Code.Unauthenticated, "token not recognised");
        return { id: "u", scopes: ["chat"] };
      },
    });
    const w = watched(h.url, { token: "bad-token-value" });
    const chat = createClient(ChatService, w.conn);
    const t = Date.now();
    const settled = (p: Promise<unknown>): Promise<unknown> => p.then(() => "resolved", (e: unknown) => e);
    const call = settled(chat.sendMessage({ roomId: "r", text: "hi" }));
    const sub = chat.roomEvents({ roomId: "r" });
    const opened = settled(w.conn.opened());
    const err = await expectFinal(w, Code.Unauthenticated, "unauthenticated");
    expect(err.closeCode).toBe(CloseCode.Unauthorized);
    expect(err.message).toContain("token not recognised");
    expect(err.message).not.toContain("bad-token-value");
    expect(await call).toBe(err);
    await expect(sub.ready).rejects.toBe(err);
    expect(await opened).toBe(err);
    expect(Date.now() - t).toBeLessThan(1_500);
    // No attempt follows: a retry would come within 100 ms, and a client that stopped sends
    // nothing a marker could be ordered after.
    await new Promise((r) => setTimeout(r, 300));
    expect(attempts).toBe(1);
  });

  it("a missing token where one is required: UNAUTHENTICATED with the hook's reason", async () => {
    const h = await harness({
      authenticate: (req): Principal => {
        if (req.token === undefined) throw new ProtocastError(Code.Unauthenticated, "sign in first", { reason: "token_required" });
        return { id: req.token, scopes: ["chat"] };
      },
    });
    const w = watched(h.url);
    const err = await expectFinal(w, Code.Unauthenticated, "token_required");
    expect(err.message).toContain("sign in first");
  });

  it("a principal that may not connect: PERMISSION_DENIED (4503)", async () => {
    const h = await harness({
      authenticate: (): Principal => {
        throw new ProtocastError(Code.PermissionDenied, "account suspended");
      },
    });
    const w = watched(h.url, { token: "x" });
    expect((await expectFinal(w, Code.PermissionDenied, "permission_denied")).closeCode).toBe(CloseCode.Forbidden);
  });

  it("a forbidden origin: PERMISSION_DENIED origin_not_allowed, without falling over to the HTTP fallback", async () => {
    const h = await harness({ allowedOrigins: ["https://app.example"] });
    let fetches = 0;
    const w = watched(h.url, {
      webSocket: withHeaders({ origin: "https://evil.example" }),
      fetch: (input, init) => {
        fetches++;
        return fetch(input, init);
      },
    });
    const err = await expectFinal(w, Code.PermissionDenied, "origin_not_allowed");
    expect(err.closeCode).toBe(CloseCode.Forbidden);
    expect(err.message).toContain("https://evil.example");
    expect(fetches).toBe(0);
  });

  it("a wrong path: NOT_FOUND unknown_path (4504)", async () => {
    const h = await harness();
    const w = watched(`ws://127.0.0.1:${h.port}/protocats`);
    const err = await expectFinal(w, Code.NotFound, "unknown_path");
    expect(err.closeCode).toBe(CloseCode.NotFound);
    expect(err.message).toContain("/protocats");
  });

  it("an unsupported version: the server selects it and closes with 4501; UNIMPLEMENTED unsupported_version", async () => {
    const h = await harness();
    const w = watched(h.url, { webSocket: (u) => nodeWebSocket(u, ["protocast.v9"]) });
    const err = await expectFinal(w, Code.Unimplemented, "unsupported_version");
    expect(err.closeCode).toBe(CloseCode.UnsupportedVersion);
    expect(err.message).toContain("protocast.v1");
  });

  it("a URL without a scheme: connect() throws INVALID_ARGUMENT at once, saying how to write it", () => {
    for (const url of ["localhost:8080/protocast", "127.0.0.1:8080", "/protocast", "ftp://example.com/protocast", ""]) {
      let thrown: unknown;
      try {
        connect(url);
      } catch (e) {
        thrown = e;
      }
      expect(thrown, url).toBeInstanceOf(ProtocastError);
      expect((thrown as ProtocastError).code).toBe(Code.InvalidArgument);
      expect((thrown as ProtocastError).reason).toBe("bad_url");
      expect((thrown as ProtocastError).message).toMatch(/ws:\/\/.*wss:\/\//);
    }
  });

  it("wss:// against a plain server: FAILED_PRECONDITION tls_mismatch, telling to use ws://", async () => {
    const h = await harness();
    const w = watched(`wss://127.0.0.1:${h.port}/protocast`);
    const err = await expectFinal(w, Code.FailedPrecondition, "tls_mismatch");
    expect(err.message).toContain("ws://");
  });

  it("a refused HTTP fallback stream carries the same code and reason as the WebSocket refusal", async () => {
    const h = await harness({
      authenticate: (): Principal => {
        throw new ProtocastError(Code.Unauthenticated, "no such user");
      },
    });
    const w = watched(h.url, { transports: ["http"], token: "t" });
    const err = await expectFinal(w, Code.Unauthenticated, "unauthenticated");
    expect(err.closeCode).toBe(CloseCode.Unauthorized);
    expect(err.message).toContain("no such user");
  });
});

describe("failures that retrying may fix", () => {
  it("no server listening: UNAVAILABLE connect_refused on every attempt while it keeps backing off; a call's deadline says why", async () => {
    // Port 1 (tcpmux) has no listener on any machine this runs on. A port freed by a probe
    // server is no good: a server of another test file may be given it before the attempts end.
    const port = 1;
    const w = watched(`ws://127.0.0.1:${port}/protocast`);
    const call = createClient(ChatService, w.conn).sendMessage({ roomId: "r", text: "x" }, { timeoutMs: 400 });
    await until(() => w.errors.length >= 3, "three failed attempts");
    expect(w.conn.state).toBe("reconnecting");
    for (const e of w.errors) expect(e).toMatchObject({ code: Code.Unavailable, reason: "connect_refused" });
    expect(w.errors[0]!.message).toContain(`127.0.0.1:${port}`);
    const late = await call.then(
      () => undefined,
      (e: unknown) => e as ProtocastError,
    );
    expect(late?.code).toBe(Code.DeadlineExceeded);
    expect(late?.message).toContain("nothing is listening");
  });

  it("too many connections: RESOURCE_EXHAUSTED too_many_connections (4006) per attempt, then connects once a slot frees", async () => {
    const h = await harness({ authenticate: () => ({ id: "same", scopes: ["chat"] }), maxConnectionsPerPrincipal: 1 });
    const first = h.client();
    await first.opened();
    const w = watched(h.url);
    await until(() => w.errors.length >= 2, "two refused attempts");
    expect(w.conn.state).toBe("reconnecting");
    expect(w.errors[0]).toMatchObject({ code: Code.ResourceExhausted, reason: "too_many_connections", closeCode: CloseCode.TooManyConnections });
    await first.close();
    await w.conn.opened();
  });

  it("an authenticate hook too slow: UNAVAILABLE auth_timeout (4007), retried", async () => {
    let calls = 0;
    const h = await harness({
      handshakeTimeoutMs: 200,
      authenticate: (): Promise<Principal> | Principal => (++calls === 1 ? new Promise(() => undefined) : { id: "u", scopes: ["chat"] }),
    });
    const w = watched(h.url);
    await w.conn.opened();
    expect(w.errors[0]).toMatchObject({ code: Code.Unavailable, reason: "auth_timeout", closeCode: CloseCode.TryLater });
  });

  it("a server shutting down: UNAVAILABLE shutting_down (4007) to new connections", async () => {
    let release = (): void => undefined;
    const h = await startHarness({}, (s) =>
      s.implement(ChatService, { ...handlers, listRooms: () => new Promise((r) => (release = () => r({ rooms: [] }))) }),
    );
    const busy = h.client({ reconnect: false });
    const running = createClient(ChatService, busy).listRooms({});
    await until(() => h.server.stats().counters.messagesIn >= 2, "the call to arrive");
    const closing = h.server.close({ deadlineMs: 2_000 });
    const w = watched(h.url);
    await until(() => w.errors.length >= 1, "a refused attempt");
    expect(w.errors[0]).toMatchObject({ code: Code.Unavailable, reason: "shutting_down", closeCode: CloseCode.TryLater });
    release();
    await running.catch(() => undefined);
    await w.conn.close();
    await closing;
  });
});

describe("HTTP statuses a Node client can read", () => {
  let http: Server | undefined;
  afterEach(async () => {
    http?.closeAllConnections();
    await new Promise<void>((r) => (http === undefined ? r() : http.close(() => r())));
    http = undefined;
  });

  /** A server that answers every upgrade with `status` (a proxy, a gateway, an older server). */
  async function answering(status: number): Promise<string> {
    http = createHttpServer();
    http.on("upgrade", (_req, socket) => socket.end(`HTTP/1.1 ${status} Nope\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`));
    await new Promise<void>((r) => http!.listen(0, "127.0.0.1", r));
    return `ws://127.0.0.1:${(http.address() as AddressInfo).port}/protocast`;
  }

  it.each([
    [401, Code.Unauthenticated, "unauthenticated"],
    [403, Code.PermissionDenied, "forbidden"],
    [404, Code.NotFound, "not_found"],
    [400, Code.InvalidArgument, "bad_request"],
  ])("maps %i to a final error", async (status, code, reason) => {
    const w = watched(await answering(status), { transports: ["websocket"] });
    await expectFinal(w, code, reason);
  });

  it("maps 503 to UNAVAILABLE and keeps retrying", async () => {
    const w = watched(await answering(503), { transports: ["websocket"] });
    await until(() => w.errors.length >= 2, "two failed attempts");
    expect(w.conn.state).toBe("reconnecting");
    expect(w.errors[0]).toMatchObject({ code: Code.Unavailable, reason: "server_unavailable" });
  });
});

describe("the debug option", () => {
  it("logs state changes and the cause of each failure, without the credential", async () => {
    const h = await harness({
      authenticate: (): Principal => {
        throw new ProtocastError(Code.Unauthenticated, "nope");
      },
    });
    const lines: { message: string; fields: unknown }[] = [];
    const w = watched(`${h.url}?token=query-secret`, { token: "secret-token", debug: (message, fields) => lines.push({ message, fields }) });
    await until(() => w.conn.state === "closed", "the connection to close");
    const text = JSON.stringify(lines);
    expect(lines.some((l) => l.message === "state connecting -> closed")).toBe(true);
    expect(lines.find((l) => l.message === "state connecting -> closed")?.fields).toMatchObject({ code: "unauthenticated", reason: "unauthenticated", closeCode: 4502 });
    expect(lines.some((l) => l.message.startsWith("attempt 1 to "))).toBe(true);
    expect(text).not.toContain("secret-token");
    expect(text).not.toContain("query-secret");
  });

  it("debug: true writes to console.debug", async () => {
    const h = await harness();
    const spy = vi.spyOn(console, "debug").mockImplementation(() => undefined);
    try {
      const w = watched(h.url, { debug: true });
      await w.conn.opened();
      expect(spy.mock.calls.some((c) => String(c[0]).startsWith("[protocast] state connecting -> open"))).toBe(true);
    } finally {
      spy.mockRestore();
    }
  });
});
