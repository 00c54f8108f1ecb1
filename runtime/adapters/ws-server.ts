import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { WebSocketServer } from "ws";
import { Code } from "../errors/code.js";
import { ProtocastError } from "../errors/protocast-error.js";
import type { DescMessage, MessageInitShape } from "@bufbuild/protobuf";
import type { ChannelDef, EventDef, ServiceDefinition } from "../service/define.js";
import type { Principal, PublishResult } from "../server/context.js";
import type { ChannelMember } from "../client/types.js";
import type { ServerCoreOptions } from "../server/options.js";
import { ServerCore, type ConnectionLogRecord } from "../server/server-core.js";
import { bump, type ServerCounters, type ServerObserver } from "../server/counters.js";
import { SUBPROTOCOL } from "../client/websocket-transport.js";
import { STATUS_TEXT, Refusal, admit, type AdmissionOptions, type UpgradeRequest } from "./admission.js";

export type { UpgradeRequest };
import { WsTransport } from "./ws-transport.js";
import { createHttpFallback } from "./http-fallback.js";


export interface ServerOptions extends ServerCoreOptions {
  /** Attach to this HTTP server; without it, the server makes its own (see listen()). */
  readonly http?: HttpServer;
  /** URL path that accepts WebSocket upgrades. Default "/protocast". */
  readonly path?: string;
  /**
   * Decides who is connecting, before the 101 answer. Throw ProtocastError UNAUTHENTICATED
   * for 401 or PERMISSION_DENIED for 403. Default: everyone is an anonymous principal with
   * every scope — fine for demos, never for production.
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
  /** Receives connection log records (connect, disconnect, auth failure, protocol violation). */
  readonly logger?: (record: ConnectionLogRecord | AuthFailureRecord) => void;
}

export interface ServerStats {
  readonly connections: number;
  /** Sessions attached or in their grace period. */
  readonly sessions: number;
  /** Channels with members on this node. */
  readonly channels: number;
  /** Idempotency records held, all principals together. */
  readonly idempotencyRecords: number;
  /** Sequenced frames sent and not yet acknowledged, all sessions together. */
  readonly acksPending: number;
  /** Other live nodes on the same broker (0 for a node on its own). */
  readonly clusterNodes: number;
  /** Running totals since the server started. */
  readonly counters: Readonly<ServerCounters>;
}

export interface AuthFailureRecord {
  readonly event: "auth_failure";
  readonly status: number;
  readonly remoteAddress: string;
  readonly reason: string;
}

/** A Protocast server on WebSocket. */
export interface ProtocastServer {
  implement<H>(service: ServiceDefinition<H, unknown, unknown, unknown>, handlers: H): void;
  publish<P extends object, M extends DescMessage>(channel: ChannelDef<P, M, any>, params: P, message: MessageInitShape<M>): Promise<PublishResult>;
  push<M extends DescMessage>(event: EventDef<M, any>, principalId: string, message: MessageInitShape<M>): number;
  /**
   * Who is in a channel, on every node of the cluster (presence channels), or on this node
   * alone when it has no other nodes.
   */
  presence<P extends object>(channel: ChannelDef<P, DescMessage, any>, params: P): Promise<ChannelMember[]>;
  /** Live connections of a named principal, on every node of the cluster as last reported. */
  connectionsOf(principalId: string): number;
  /**
   * Where a named principal is connected: per node, its sessions (attached or in their grace
   * period) and live connections. Other nodes' figures are as they last reported them.
   */
  locate(principalId: string): { node: string; sessions: number; connections: number }[];
  /** This node's id in its cluster; session ids start with it. */
  readonly nodeId: string;
  /** Other nodes of the cluster that are alive (empty for a node on its own). */
  nodes(): string[];
  /** Channels of one method that have members on this node, with their parameters and members. */
  channels<P extends object>(channel: ChannelDef<P, DescMessage, any>): { channel: string; params: P; members: ChannelMember[] }[];
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
  readonly connectionCount: number;
  /** Counts of what the server holds right now; all zero after every client left for good. */
  stats(): ServerStats;
  /**
   * Removes sessions from a channel at once (they get Unsubscribed with PERMISSION_DENIED):
   * every member, or only those of one principal, on every node of the cluster. Returns how
   * many were removed on this node.
   */
  kick<P extends object>(channel: ChannelDef<P, DescMessage, any>, params: P, options?: { principalId?: string; reason?: string }): number;
  /**
   * Stops accepting connections, sends every client a Goaway, lets running calls finish for up
   * to `deadlineMs` (default 10 000; 0 closes at once), then closes the rest with 1001 and the
   * server's own HTTP server if it has one.
   */
  close(options?: { deadlineMs?: number }): Promise<void>;
}

let anonymous = 0;

export function createServer(options: ServerOptions = {}): ProtocastServer {
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
        if (fallback?.handle(req, res) === true) return;
        res.writeHead(426, { "content-type": "text/plain" }).end("this endpoint speaks WebSocket (protocast.v1)\n");
      },
    );
  const admission: AdmissionOptions = {
    authenticate: options.authenticate ?? (() => ({ id: `anonymous-${++anonymous}`, scopes: ["*"], anonymous: true }) satisfies Principal),
    allowedOrigins: options.allowedOrigins,
    allowQueryToken: options.allowQueryToken ?? false,
    timeoutMs: core.limits.handshakeTimeoutMs,
  };
  const transports = options.transports ?? ["websocket", "http"];
  const maxHeaders = options.maxHeaders ?? 100;
  const fallback = transports.includes("http")
    ? createHttpFallback(core, path, admission, (status, reason, remoteAddress) => {
        core.counters.authFailures++;
        log?.({ event: "auth_failure", status, remoteAddress, reason });
      })
    : undefined;
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: core.limits.maxEnvelopeBytes,
    perMessageDeflate: false,
    clientTracking: false,
    handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
  });

  const refuse = (socket: Duplex, status: number, reason: string, remoteAddress: string, auth = true): void => {
    if (auth) {
      core.counters.authFailures++;
      log?.({ event: "auth_failure", status, remoteAddress, reason });
    } else {
      bump(core.counters.limitHits, "upgrade_refused");
    }
    if (!socket.destroyed) {
      const text = STATUS_TEXT[status] ?? "Bad Request";
      const extra = status === 401 ? "WWW-Authenticate: Bearer\r\n" : status === 503 ? "Retry-After: 1\r\n" : "";
      socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\n${extra}Content-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(reason) + 1}\r\n\r\n${reason}\n`);
    }
  };

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const remoteAddress = req.socket.remoteAddress ?? "";
    const url = new URL(req.url ?? "/", "http://localhost");
    if (url.pathname !== path) {
      if (http.listenerCount("upgrade") === 1) refuse(socket, 404, `no WebSocket endpoint at ${url.pathname}`, remoteAddress, false);
      return;
    }
    socket.on("error", () => undefined);
    // Node only refuses headers by total size (16 KiB), and silently keeps the first 2,000:
    // many tiny headers would pass. Count them.
    if (req.rawHeaders.length / 2 > maxHeaders) {
      refuse(socket, 431, `more than ${maxHeaders} request headers`, remoteAddress, false);
      return;
    }
    if (!transports.includes("websocket")) {
      refuse(socket, 403, "WebSocket is turned off on this server; use the HTTP fallback", remoteAddress, false);
      return;
    }
    const offered = (req.headers["sec-websocket-protocol"] ?? "").split(",").map((s) => s.trim());
    if (!offered.includes(SUBPROTOCOL)) {
      refuse(socket, 400, `offer the ${SUBPROTOCOL} subprotocol`, remoteAddress, false);
      return;
    }
    admit(req, offered, admission).then(
      (principal) => {
        if (socket.destroyed) return;
        wss.handleUpgrade(req, socket, head, (ws) => {
          core.accept(new WsTransport(ws), principal, remoteAddress);
        });
      },
      (e: unknown) => {
        const r = e instanceof Refusal ? e : new Refusal(401, String(e));
        refuse(socket, r.status, r.message, remoteAddress);
      },
    );
  };
  http.on("upgrade", onUpgrade);

  return {
    http,
    implement: (service, handlers) => core.implement(service, handlers),
    publish: (channel, params, message) => core.publish(channel, params, message),
    push: (event, principalId, message) => core.push(event, principalId, message),
    presence: (channel, params) => core.presence(channel.topic(params)),
    connectionsOf: (principalId) => core.connectionsOf(principalId),
    locate: (principalId) => core.locate(principalId),
    nodeId: core.nodeId,
    nodes: () => core.cluster?.liveNodes() ?? [],
    channels: (def) =>
      core.hub.census(def as unknown as ChannelDef).flatMap((c) => {
        const params = def.parse(c.channel);
        return params === undefined ? [] : [{ channel: c.channel, params, members: c.members }];
      }),
    get connectionCount() {
      return core.connections.size;
    },
    stats: () => ({
      connections: core.connections.size,
      sessions: core.sessions.size,
      channels: core.hub.census().length,
      idempotencyRecords: core.idempotency.size ?? 0,
      acksPending: Array.from(core.sessions.values()).reduce((n, s) => n + s.log.size, 0),
      clusterNodes: core.cluster?.liveNodes().length ?? 0,
      counters: core.counters,
    }),
    listen(port = 0, host = "127.0.0.1") {
      if (!ownHttp) return Promise.reject(new ProtocastError(Code.FailedPrecondition, "listen() is for servers without options.http"));
      return new Promise((resolve, reject) => {
        http.once("error", reject);
        http.listen(port, host, () => {
          http.off("error", reject);
          resolve(http.address() as AddressInfo);
        });
      });
    },
    handleHttp: (req, res) => fallback?.handle(req, res) ?? false,
    kick: (channel, params, o = {}) => core.kick(channel.topic(params), o.principalId, o.reason ?? "kicked"),
    async close(o = {}) {
      await core.close(o.deadlineMs ?? 10_000);
      http.off("upgrade", onUpgrade);
      fallback?.close();
      wss.close();
      if (ownHttp && http.listening) {
        http.closeAllConnections();
        await new Promise<void>((resolve) => http.close(() => resolve()));
      }
    },
  };
}
