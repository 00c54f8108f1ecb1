import type { IncomingMessage, Server as HttpServer } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer } from "ws";
import { formatCloseReason } from "../../errors/close-reason.js";
import { asRefusal, type Refusal } from "../../server/admission.js";
import type { Endpoint } from "../../server/endpoint.js";
import { SUBPROTOCOL, VERSION_PROTOCOL } from "../../wire/protocol.js";
import { admissionRequest } from "../http/admission-request.js";
import { STATUS_TEXT } from "../http/status-text.js";
import { wsDeflateOption, type CompressionSettings } from "./compression.js";
import { WsTransport } from "./ws-transport.js";

/**
 * Swallows socket errors during and after the upgrade (ws reports them as closes). Shared and
 * defined out here on purpose: a listener made inside the upgrade handler would keep the
 * handler's scope, the upgrade request with its headers among it, alive for the connection's life.
 */
function ignoreError(): void {}

/**
 * The endpoint's WebSocket side on a Node HTTP server: takes its upgrade requests, acts on the
 * endpoint's decision, and hands admitted sockets to the core. Returns what stops it.
 */
export function serveWebSocket(endpoint: Endpoint, http: HttpServer, compression: CompressionSettings | undefined): { close(): void } {
  const { core } = endpoint;
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
    endpoint.report(r, "websocket", 0, admissionRequest(req));
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
    endpoint.report(r, "websocket", r.closeCode, admissionRequest(req));
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
    const offered = (req.headers["sec-websocket-protocol"] ?? "").split(",").map((s) => s.trim());
    const decision = endpoint.decide({
      pathname: new URL(req.url ?? "/", "http://localhost").pathname,
      offered,
      headerCount: req.rawHeaders.length / 2,
      alone: http.listenerCount("upgrade") === 1,
    });
    if (decision.kind === "pass") return;
    socket.on("error", ignoreError);
    if (decision.kind === "refuse") {
      if (decision.answer === "http") refuseHttp(req, socket, decision.refusal);
      else refuseAfterUpgrade(req, socket, head, decision.refusal);
      return;
    }
    endpoint.admit(admissionRequest(req), offered).then(
      (principal) => {
        if (socket.destroyed) return;
        wss.handleUpgrade(req, socket, head, (ws) => {
          // ws listens for the socket's errors from here on.
          socket.removeListener("error", ignoreError);
          core.accept(new WsTransport(ws, compression), principal, req.socket.remoteAddress ?? "");
        });
      },
      (e: unknown) => refuseAfterUpgrade(req, socket, head, asRefusal(e)),
    );
  };
  http.on("upgrade", onUpgrade);

  return {
    close() {
      http.off("upgrade", onUpgrade);
      wss.close();
    },
  };
}
