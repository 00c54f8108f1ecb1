import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { WebSocketServer } from "ws";
import { Code } from "../../errors/code.js";
import { ProtocastError } from "../../errors/protocast-error.js";
import type { Principal } from "../../server/context.js";
import { SERVER_CORE_OPTION_KEYS, type ServerCoreOptions } from "../../server/options.js";
import { expectBoolean, expectFunction, expectListOf, expectMethods, expectString, optionKeys, rejectUnknownOptions } from "../../errors/check-options.js";
import { ServerCore, type ConnectionLogRecord } from "../../server/server-core.js";
import { serverApi, type ServerApi, type ServerStats } from "../../server/server-api.js";
import { bump, type ServerCounters, type ServerObserver } from "../../server/counters.js";
import { SUBPROTOCOL } from "../../wire/protocol.js";
import { CloseCode } from "../../errors/close-codes.js";
import { formatCloseReason } from "../../errors/close-reason.js";
import { STATUS_TEXT, Refusal, admit, type AdmissionOptions, type UpgradeRequest } from "../shared/admission.js";
import { defaultRefusalLog, type RefusalRecord } from "../shared/refusal-log.js";

export type { UpgradeRequest, RefusalRecord, ServerStats };
import { WsTransport } from "./ws-transport.js";
import { resolveCompression, wsDeflateOption, type CompressionOptions } from "./compression.js";
import { createHttpFallback } from "../http/http-fallback.js";


export interface ServerOptions extends ServerCoreOptions {
  /** Attach to this HTTP server; without it, the server makes its own (see listen()). */
  readonly http?: HttpServer;
  /** URL path that accepts WebSocket upgrades. Default "/protocast". */
  readonly path?: string;
  /**
   * Decides who is connecting, before the session opens. Throw ProtocastError UNAUTHENTICATED
   * (close 4502 / HTTP 401), PERMISSION_DENIED (4503 / 403) or UNAVAILABLE (4007 / 503); the
   * error's message (and its snake_case `reason`, if set) travel to the client, so keep them
   * short and free of secrets. Default: everyone is an anonymous principal with every scope —
   * fine for demos, never for production.
   */
  readonly authenticate?: (request: UpgradeRequest) => Principal | Promise<Principal>;
  /**
   * Origins allowed to open a connection, such as "https://app.example.com". Default
   * undefined: any origin without cookies; with cookies only the server's own origin.
   */
  readonly allowedOrigins?: readonly string[];
  /**
   * Ways in: "websocket" (the upgrade) and "http" (the fallback for clients whose WebSocket is
   * blocked: a streamed response down, POSTs up). Default both.
   */
  readonly transports?: readonly ("websocket" | "http")[];
  /** Request headers an upgrade may carry; more are refused with 431. Default 100. */
  readonly maxHeaders?: number;
  /** Accept a credential in the `token` query parameter. Default false (URLs end up in logs). */
  readonly allowQueryToken?: boolean;
  /** Observes calls (latency by method and outcome), for metrics. */
  readonly observer?: ServerObserver;
  /**
   * Receives connection log records (connect, disconnect, refused attempts, protocol
   * violations). Default: refused attempts only, on console.warn, at most 10 lines a minute
   * (see defaultRefusalLog); pass `() => {}` to silence them.
   */
  readonly logger?: (record: ConnectionLogRecord | RefusalRecord) => void;
  /**
   * permessage-deflate for clients that offer it (browsers do; the Node client does): `true`
   * or settings (threshold, level, client window). Off by default: it costs CPU per message
   * and pays only for large, repetitive payloads. A channel event is compressed once per
   * publish, not once per subscriber. See compression.ts.
   */
  readonly compression?: boolean | CompressionOptions;
}

/** A refused attempt; the name predates refusals other than authentication ones. */
export type AuthFailureRecord = RefusalRecord;

/** A Protocast server on WebSocket, with the HTTP fallback: the server API plus listening. */
export interface ProtocastServer extends ServerApi {
  /**
   * Serves the HTTP fallback transport's requests ({path}/stream, {path}/send) and returns
   * true, or returns false for other requests. A server given `options.http` calls it from
   * its own request handler; the server's own HTTP server does so by itself.
   */
  handleHttp(req: IncomingMessage, res: ServerResponse): boolean;
  /** Starts the server's own HTTP server. Not for servers given `http`. */
  listen(port?: number, host?: string): Promise<AddressInfo>;
  /** The underlying HTTP server (given or own). */
  readonly http: HttpServer;
  /**
   * Stops accepting connections, sends every client a Goaway, lets running calls finish for up
   * to `deadlineMs` (default 10 000; 0 closes at once), then closes the rest with 1001 and the
   * server's own HTTP server if it has one.
   */
  close(options?: { deadlineMs?: number }): Promise<void>;
}

/** Every option of createServer: a key missing here fails to compile (see the check below). */
const SERVER_OPTION_KEYS = optionKeys<ServerOptions>()(
  ...SERVER_CORE_OPTION_KEYS,
  "http",
  "path",
  "authenticate",
  "allowedOrigins",
  "transports",
  "maxHeaders",
  "allowQueryToken",
  "observer",
  "logger",
  "compression",
);

/** Checks what createServer was given beyond the core's options, naming the option at fault. */
function checkServerOptions(options: ServerOptions): void {
  const where = "createServer";
  if (typeof options !== "object" || options === null) throw new ProtocastError(Code.InvalidArgument, `${where}: options must be an object`, { reason: "bad_option" });
  rejectUnknownOptions(where, options, SERVER_OPTION_KEYS);
  expectMethods(where, "http", options.http, ["on", "listen", "close"]);
  expectString(where, "path", options.path, (p) => (p.startsWith("/") && !p.includes("?") ? undefined : 'must start with "/" and hold no query'));
  expectFunction(where, "authenticate", options.authenticate);
  expectFunction(where, "logger", options.logger);
  expectBoolean(where, "allowQueryToken", options.allowQueryToken);
  expectListOf(where, "transports", options.transports, ["websocket", "http"]);
  if (options.allowedOrigins !== undefined) {
    if (!Array.isArray(options.allowedOrigins)) throw new ProtocastError(Code.InvalidArgument, `${where}: option allowedOrigins must be a list of origins such as "https://app.example.com"`, { reason: "bad_option" });
    for (const o of options.allowedOrigins) {
      expectString(where, "allowedOrigins[]", o, (s) => (/^https?:\/\/[^/?#\s]+$/.test(s) ? undefined : 'must be an origin: scheme and host, such as "https://app.example.com", with no path'));
    }
  }
  if (options.maxHeaders !== undefined && (!Number.isInteger(options.maxHeaders) || options.maxHeaders < 1)) {
    throw new ProtocastError(Code.InvalidArgument, `${where}: option maxHeaders must be a positive integer, got ${String(options.maxHeaders)}`, { reason: "bad_option" });
  }
  if (options.observer !== undefined && (typeof options.observer !== "object" || options.observer === null)) {
    throw new ProtocastError(Code.InvalidArgument, `${where}: option observer must be an object (createMetrics().observer)`, { reason: "bad_option" });
  }
}

let anonymous = 0;
/** The scopes of the default anonymous principal, shared by all of them. */
const ALL_SCOPES: readonly string[] = Object.freeze(["*"]);
/**
 * Swallows socket errors during and after the upgrade (ws reports them as closes). Shared and
 * defined out here on purpose: a listener made inside the upgrade handler would keep the
 * handler's scope, the upgrade request with its headers among it, alive for the connection's life.
 */
function ignoreError(): void {}

/** A version subprotocol ("protocast.v1"), not a credential one ("protocast.token.…"). */
const VERSION_PROTOCOL = /^protocast\.v\d+$/;

export function createServer(options: ServerOptions = {}): ProtocastServer {
  checkServerOptions(options);
  const path = options.path ?? "/protocast";
  const authenticateHook = options.authenticate;
  // By default a refreshed credential is checked by the same hook as the first one.
  const reauthenticate =
    options.reauthenticate ??
    (authenticateHook === undefined
      ? undefined
      : (token: string) => authenticateHook({ headers: { authorization: `Bearer ${token}` }, url: path, origin: undefined, token, remoteAddress: "" }));
  const core = new ServerCore(reauthenticate === undefined ? options : { ...options, reauthenticate });
  const log = options.logger;
  if (log !== undefined) core.logger = log;
  if (options.observer !== undefined) core.observer = options.observer;
  const ownHttp = options.http === undefined;
  // The server's own HTTP server bounds the handshake: headers that drip in slower than the
  // handshake timeout are cut (Node checks every connectionsCheckingInterval).
  const http =
    options.http ??
    createHttpServer(
      {
        headersTimeout: core.limits.handshakeTimeoutMs,
        requestTimeout: core.limits.handshakeTimeoutMs,
        connectionsCheckingInterval: Math.min(1_000, core.limits.handshakeTimeoutMs),
      },
      (req, res) => {
        if (server.handleHttp(req, res)) return;
        res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      },
    );
  const admission: AdmissionOptions = {
    authenticate: options.authenticate ?? (() => ({ id: `anonymous-${++anonymous}`, scopes: ALL_SCOPES, anonymous: true }) satisfies Principal),
    allowedOrigins: options.allowedOrigins,
    allowQueryToken: options.allowQueryToken ?? false,
    timeoutMs: core.limits.handshakeTimeoutMs,
  };
  const transports = options.transports ?? ["websocket", "http"];
  const compression = resolveCompression(options.compression);
  const maxHeaders = options.maxHeaders ?? 100;
  const logRefusal = log ?? defaultRefusalLog();
  /** Counts and logs a refusal; `closeCode` 0 when it was answered with a plain HTTP status. */
  const report = (r: Refusal, transport: "websocket" | "http", closeCode: number, req: IncomingMessage): void => {
    const auth = r.admission;
    if (auth) core.counters.authFailures++;
    else bump(core.counters.limitHits, "upgrade_refused");
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    logRefusal({
      event: auth ? "auth_failure" : "upgrade_refused",
      transport,
      status: r.status,
      closeCode,
      reason: r.reason,
      message: r.message,
      remoteAddress: req.socket.remoteAddress ?? "",
      path,
    });
  };
  const fallback = transports.includes("http") ? createHttpFallback(core, path, admission, (r, req) => report(r, "http", 0, req)) : undefined;
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: core.limits.maxEnvelopeBytes,
    perMessageDeflate: wsDeflateOption(compression),
    clientTracking: false,
    // A refusal selects the version the client offered, even one this server does not speak:
    // the client then reads the close code instead of failing on a missing subprotocol.
    handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : (Array.from(protocols).find((p) => VERSION_PROTOCOL.test(p)) ?? false)),
  });

  /** Answers with a plain HTTP status: for requests that offered no Protocast version. */
  const refuseHttp = (req: IncomingMessage, socket: Duplex, r: Refusal): void => {
    report(r, "websocket", 0, req);
    if (!socket.destroyed) {
      const text = STATUS_TEXT[r.status] ?? "Bad Request";
      const extra = r.status === 401 ? "WWW-Authenticate: Bearer\r\n" : r.status === 503 ? "Retry-After: 1\r\n" : "";
      const body = `${r.reason}: ${r.message}\n`;
      socket.end(`HTTP/1.1 ${r.status} ${text}\r\nConnection: close\r\n${extra}Content-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    }
  };

  /**
   * Completes the upgrade and closes at once with the refusal's code, before any envelope: a
   * browser cannot read an HTTP status, but it can read a close code and reason.
   */
  const refuseAfterUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer, r: Refusal): void => {
    report(r, "websocket", r.closeCode, req);
    if (socket.destroyed) return;
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on("error", () => undefined);
      ws.close(r.closeCode, formatCloseReason(r.reason, r.message));
      // A peer that never answers the close frame is cut after the close timeout.
      const cut = setTimeout(() => ws.terminate(), core.limits.closeTimeoutMs);
      (cut as { unref?: () => void }).unref?.();
      ws.once("close", () => clearTimeout(cut));
    });
  };

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const offered = (req.headers["sec-websocket-protocol"] ?? "").split(",").map((s) => s.trim());
    const version = offered.find((p) => VERSION_PROTOCOL.test(p));
    const refuse = (r: Refusal): void => (version === undefined ? refuseHttp(req, socket, r) : refuseAfterUpgrade(req, socket, head, r));
    if (url.pathname !== path) {
      // Another upgrade listener may serve that path; only a server alone on its HTTP server answers.
      if (http.listenerCount("upgrade") === 1) {
        socket.on("error", ignoreError);
        refuse(new Refusal(404, CloseCode.NotFound, "unknown_path", `no Protocast endpoint at ${url.pathname.slice(0, 60)}`, false));
      }
      return;
    }
    socket.on("error", ignoreError);
    // Node only refuses headers by total size (16 KiB), and silently keeps the first 2,000:
    // many tiny headers would pass. Count them. Answered in HTTP whatever was offered: the
    // request is not one to spend a WebSocket on.
    if (req.rawHeaders.length / 2 > maxHeaders) {
      refuseHttp(req, socket, new Refusal(431, 0, "too_many_headers", `more than ${maxHeaders} request headers`, false));
      return;
    }
    if (!transports.includes("websocket")) {
      // A plain status on purpose: the client moves on to the HTTP fallback.
      refuseHttp(req, socket, new Refusal(403, 0, "websocket_disabled", "WebSocket is turned off on this server; use the HTTP fallback", false));
      return;
    }
    if (version === undefined) {
      refuseHttp(req, socket, new Refusal(400, 0, "no_subprotocol", `offer the ${SUBPROTOCOL} subprotocol`, false));
      return;
    }
    if (!offered.includes(SUBPROTOCOL)) {
      refuseAfterUpgrade(req, socket, head, new Refusal(400, CloseCode.UnsupportedVersion, "unsupported_version", `this server speaks ${SUBPROTOCOL} only`, false));
      return;
    }
    if (core.isClosing) {
      refuseAfterUpgrade(req, socket, head, new Refusal(503, CloseCode.TryLater, "shutting_down", "the server is shutting down", false));
      return;
    }
    admit(req, offered, admission).then(
      (principal) => {
        if (socket.destroyed) return;
        wss.handleUpgrade(req, socket, head, (ws) => {
          // ws listens for the socket's errors from here on.
          socket.removeListener("error", ignoreError);
          core.accept(new WsTransport(ws, compression), principal, req.socket.remoteAddress ?? "");
        });
      },
      (e: unknown) => refuseAfterUpgrade(req, socket, head, e instanceof Refusal ? e : new Refusal(401, CloseCode.Unauthorized, "unauthenticated", String(e))),
    );
  };
  http.on("upgrade", onUpgrade);

  const server: ProtocastServer = Object.assign(serverApi(core), {
    http,
    listen(port = 0, host = "127.0.0.1"): Promise<AddressInfo> {
      if (!ownHttp) return Promise.reject(new ProtocastError(Code.FailedPrecondition, "listen() is for servers without options.http"));
      return new Promise((resolve, reject) => {
        http.once("error", reject);
        http.listen(port, host, () => {
          http.off("error", reject);
          resolve(http.address() as AddressInfo);
        });
      });
    },
    handleHttp(req: IncomingMessage, res: ServerResponse): boolean {
      if (fallback?.handle(req, res) === true) return true;
      // A plain request to the endpoint itself (PROTOCOL.md 2.1).
      if (new URL(req.url ?? "/", "http://localhost").pathname !== path || req.headers.upgrade !== undefined) return false;
      res.writeHead(426, { "content-type": "text/plain", upgrade: "websocket", connection: "Upgrade" }).end(`this endpoint speaks WebSocket (${SUBPROTOCOL})\n`);
      return true;
    },
    async close(o: { deadlineMs?: number } = {}) {
      await core.close(o.deadlineMs ?? 10_000);
      http.off("upgrade", onUpgrade);
      fallback?.close();
      wss.close();
      if (ownHttp && http.listening) {
        http.closeAllConnections();
        await new Promise<void>((resolve) => http.close(() => resolve()));
      }
    },
  });
  return server;
}
