import { createServer as createHttpServer, type IncomingHttpHeaders, type IncomingMessage, type Server as HttpServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { expectMethods, optionKeys } from "../../errors/check-options.js";
import { Code } from "../../errors/code.js";
import { ProtocastError } from "../../errors/protocast-error.js";
import type { UpgradeRequest as EndpointUpgradeRequest } from "../../server/admission.js";
import { createEndpoint } from "../../server/endpoint.js";
import { ENDPOINT_OPTION_KEYS, type EndpointOptions } from "../../server/endpoint-options.js";
import { serverApi, type RunningServer } from "../../server/server-api.js";
import { SUBPROTOCOL } from "../../wire/protocol.js";
import { createHttpFallback } from "../http/http-fallback.js";
import { resolveCompression, type CompressionOptions } from "../ws/compression.js";
import { serveWebSocket } from "../ws/ws-server.js";

/** What the authenticate hook sees of the HTTP request that opens a connection. */
export interface UpgradeRequest extends EndpointUpgradeRequest {
  readonly headers: IncomingHttpHeaders;
}

export interface ServerOptions extends EndpointOptions<UpgradeRequest> {
  /** Attach to this HTTP server; without it, the server makes its own (see listen()). */
  readonly http?: HttpServer;
  /**
   * permessage-deflate for clients that offer it (browsers do; the Node client does): `true`
   * or settings (threshold, level, client window). Off by default: it costs CPU per message
   * and pays only for large, repetitive payloads. A channel event is compressed once per
   * publish, not once per subscriber. See compression.ts.
   */
  readonly compression?: boolean | CompressionOptions;
}

/** A Protocast server on WebSocket, with the HTTP fallback: the server API plus listening. */
export interface ProtocastServer extends RunningServer {
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

/** Every option of createServer: a key missing here fails to compile. */
const SERVER_OPTION_KEYS = optionKeys<ServerOptions>()(...ENDPOINT_OPTION_KEYS, "http", "compression");

/** The endpoint on Node: its own HTTP server or a given one, the `ws` server, the HTTP fallback. */
export function createServer(options: ServerOptions = {}): ProtocastServer {
  const endpoint = createEndpoint(options, {
    keys: SERVER_OPTION_KEYS,
    check: (o) => expectMethods("createServer", "http", o.http, ["on", "listen", "close"]),
  });
  const { core, path } = endpoint;
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
  const compression = resolveCompression(options.compression);
  const fallback = endpoint.transports.includes("http") ? createHttpFallback(endpoint) : undefined;
  const webSocket = serveWebSocket(endpoint, http, compression);

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
      webSocket.close();
      fallback?.close();
      if (ownHttp && http.listening) {
        http.closeAllConnections();
        await new Promise<void>((resolve) => http.close(() => resolve()));
      }
    },
  });
  return server;
}
