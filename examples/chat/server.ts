import { readFile } from "node:fs/promises";
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import {
  Code,
  ProtocastError,
  createServer,
  type Broker,
  type IdempotencyStore,
  type Principal,
  type ProtocastServer,
  type SessionStore,
  type Tracing,
} from "protocast/node";
import { ChatService } from "../../generated/acme/chat/v1/chat_protocast.js";
import { bundleApp } from "./bundle.js";
import { createChatApp, type ChatApp } from "./chat-service.js";
import { demoTracing } from "./tracing.js";

/** User names the demo accepts; the token a page sends is the name itself. */
export const USER_NAME = /^[A-Za-z0-9_-]{1,32}$/;

export interface ChatServerOptions {
  /** Default 8080; 0 picks a free port. */
  readonly port?: number;
  /** Default "127.0.0.1". */
  readonly host?: string;
  /** Where channels live: a Redis or NATS broker to share them with other nodes. Default: in-process. */
  readonly broker?: Broker;
  /** A session store shared by the nodes, so that a client resumes on any node. Default: in memory. */
  readonly sessions?: SessionStore;
  /** An idempotency store shared by the nodes, so that retries dedupe on any node. Default: in memory. */
  readonly idempotency?: IdempotencyStore;
  /**
   * Ways in, as the Protocast server's `transports` option. Default both; ["http"] refuses
   * WebSocket upgrades, so that pages have to use the HTTP fallback.
   */
  readonly transports?: readonly ("websocket" | "http")[];
  /** Spans of calls, publishes and deliveries (PROTOCAST_TRACE=console prints them). Default none. */
  readonly tracing?: Tracing;
}

export interface RunningChatServer {
  /** Page URL, such as "http://127.0.0.1:8080/". */
  readonly url: string;
  readonly port: number;
  readonly app: ChatApp;
  readonly protocast: ProtocastServer;
  close(): Promise<void>;
}

interface Asset {
  readonly type: string;
  readonly body: string;
}

/**
 * Demo-grade authentication: the bearer token is the user name. A real deployment verifies
 * a signed credential here; nothing else in the demo would change.
 */
function authenticate(token: string | undefined): Principal {
  if (token === undefined || !USER_NAME.test(token)) {
    throw new ProtocastError(Code.Unauthenticated, "token must be a user name of 1-32 letters, digits, \"_\" or \"-\"");
  }
  return { id: token, scopes: ["chat"] };
}

async function loadAssets(): Promise<Map<string, Asset>> {
  const file = (name: string): Promise<string> => readFile(fileURLToPath(new URL(`./public/${name}`, import.meta.url)), "utf8");
  const [html, css, app] = await Promise.all([file("index.html"), file("style.css"), bundleApp()]);
  const page: Asset = { type: "text/html; charset=utf-8", body: html };
  return new Map([
    ["/", page],
    ["/index.html", page],
    ["/style.css", { type: "text/css; charset=utf-8", body: css }],
    ["/app.js", { type: "text/javascript; charset=utf-8", body: app.js }],
    ["/app.js.map", { type: "application/json; charset=utf-8", body: app.map }],
  ]);
}

function serve(assets: Map<string, Asset>, req: IncomingMessage, res: ServerResponse): void {
  const path = new URL(req.url ?? "/", "http://localhost").pathname;
  const asset = assets.get(path);
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" }).end("method not allowed\n");
    return;
  }
  if (asset === undefined) {
    res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
    return;
  }
  res.writeHead(200, {
    "content-type": asset.type,
    "content-length": Buffer.byteLength(asset.body),
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "content-security-policy": "default-src 'self'; connect-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'",
  });
  res.end(req.method === "HEAD" ? undefined : asset.body);
}

/** Starts the chat demo: the page and the Protocast endpoint on one HTTP server. */
export async function startChatServer(options: ChatServerOptions = {}): Promise<RunningChatServer> {
  const host = options.host ?? "127.0.0.1";
  const assets = await loadAssets();
  // The fallback transport's requests go to Protocast; everything else is the page.
  const http = createHttpServer((req, res) => {
    if (protocast?.handleHttp(req, res) === true) return;
    serve(assets, req, res);
  });
  let protocast: ProtocastServer | undefined;
  const app = createChatApp({
    rooms: () =>
      (protocast?.channels(ChatService.channels.roomEvents) ?? []).map((c) => ({
        roomId: c.params.roomId,
        members: new Set(c.members.map((m) => m.principal)).size,
      })),
  });
  protocast = createServer({
    http,
    authenticate: (req) => authenticate(req.token),
    ...(options.broker === undefined ? {} : { broker: options.broker }),
    ...(options.sessions === undefined ? {} : { sessions: options.sessions }),
    ...(options.idempotency === undefined ? {} : { idempotency: options.idempotency }),
    ...(options.transports === undefined ? {} : { transports: options.transports }),
    ...(options.tracing === undefined ? {} : { tracing: options.tracing }),
  });
  protocast.implement(ChatService, app.handlers);
  await new Promise<void>((resolve, reject) => {
    http.once("error", reject);
    http.listen(options.port ?? 8080, host, () => {
      http.off("error", reject);
      resolve();
    });
  });
  const port = (http.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host.includes(":") ? `[${host}]` : host}:${port}/`,
    port,
    app,
    protocast,
    close() {
      closing ??= (async () => {
        // WebSocket clients first (close 1001, so they reconnect), then the page's keep-alive sockets.
        await protocast.close();
        http.closeAllConnections();
        await new Promise<void>((resolve) => http.close(() => resolve()));
      })();
      return closing;
    },
  };
}

/** The value after a command-line flag, as in `--broker redis://127.0.0.1:6379`. */
function argument(flag: string): string | undefined {
  const i = process.argv.indexOf(flag);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** What several nodes share, on one engine. */
interface Shared {
  readonly broker: Broker;
  readonly sessions: SessionStore;
  readonly idempotency: IdempotencyStore;
  close(): Promise<void>;
}

/**
 * Broker, session store and idempotency store from a URL: redis:// or rediss:// for Redis,
 * nats:// for NATS with JetStream.
 */
async function sharedFor(url: string): Promise<Shared> {
  const scheme = new URL(url).protocol;
  let shared: Omit<Shared, "close">;
  if (scheme === "redis:" || scheme === "rediss:") {
    // Loaded only when asked for: the engines are optional peer dependencies.
    const { createRedisBroker, createRedisIdempotencyStore, createRedisSessionStore } = await import("protocast/redis");
    shared = { broker: createRedisBroker({ url }), sessions: createRedisSessionStore({ url }), idempotency: createRedisIdempotencyStore({ url }) };
  } else if (scheme === "nats:") {
    const servers = new URL(url).host;
    const { createNatsBroker, createNatsIdempotencyStore, createNatsSessionStore } = await import("protocast/nats");
    const [broker, sessions, idempotency] = await Promise.all([
      createNatsBroker({ servers }),
      createNatsSessionStore({ servers }),
      createNatsIdempotencyStore({ servers }),
    ]);
    shared = { broker, sessions, idempotency };
  } else {
    throw new Error(`--broker takes a redis:// or nats:// URL, got ${url}`);
  }
  return {
    ...shared,
    close: async () => {
      await Promise.all([shared.broker.close(), shared.sessions.close(), shared.idempotency.close()]);
    },
  };
}

async function main(): Promise<void> {
  const port = Number(process.env["PORT"] ?? 8080);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`PORT must be a port number, got ${process.env["PORT"]}`);
  const brokerUrl = argument("--broker") ?? process.env["BROKER"];
  const shared = brokerUrl === undefined ? undefined : await sharedFor(brokerUrl);
  // TRANSPORTS=http refuses WebSocket upgrades, to try the fallback by hand.
  const transports = process.env["TRANSPORTS"]?.split(",").map((t) => t.trim());
  if (transports !== undefined && !transports.every((t): t is "websocket" | "http" => t === "websocket" || t === "http")) {
    throw new Error(`TRANSPORTS lists "websocket" and/or "http", comma separated; got ${process.env["TRANSPORTS"]}`);
  }
  const tracing = await demoTracing();
  const server = await startChatServer({
    port,
    ...(tracing === undefined ? {} : { tracing }),
    host: process.env["HOST"] ?? "127.0.0.1",
    ...(shared === undefined ? {} : { broker: shared.broker, sessions: shared.sessions, idempotency: shared.idempotency }),
    ...(transports === undefined ? {} : { transports }),
  });
  console.log(`Protocast chat demo on ${server.url} (broker: ${brokerUrl ?? "in-process"}, node ${server.protocast.nodeId}${tracing === undefined ? "" : ", spans to the console"})`);
  const stop = (signal: string): void => {
    console.log(`${signal}: closing`);
    server.close().then(
      async () => {
        await shared?.close();
        process.exit(0);
      },
      (e: unknown) => {
        console.error(e);
        process.exit(1);
      },
    );
  };
  process.once("SIGINT", () => stop("SIGINT"));
  process.once("SIGTERM", () => stop("SIGTERM"));
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
