import { CloseCode } from "../errors/close-codes.js";
import { SUBPROTOCOL, VERSION_PROTOCOL } from "../wire/protocol.js";
import { Refusal } from "./admission.js";

/** What the server reads of a WebSocket upgrade request before it spends anything on it. */
export interface UpgradeDescription {
  /** Path of the request target, without the query. */
  readonly pathname: string;
  /** The Sec-WebSocket-Protocol values, in the order offered (empty strings included). */
  readonly offered: readonly string[];
  /** Request headers as sent, repeated ones counted each time. */
  readonly headerCount: number;
  /** No other upgrade listener shares the HTTP server, so a request for another path is ours to answer. */
  readonly alone: boolean;
}

/** The server's side of the decision. */
export interface UpgradePolicy {
  /** The endpoint's path. */
  readonly path: string;
  readonly maxHeaders: number;
  /** WebSocket is among the server's transports. */
  readonly websocket: boolean;
  /** The server is shutting down. */
  readonly closing: boolean;
}

/**
 * What to do with an upgrade request:
 * - "pass": not this server's; another upgrade listener may serve it, so leave it alone.
 * - "refuse": answer `refusal` with a plain HTTP status ("http"), or complete the upgrade and
 *   close at once with its close code ("close"), for a client that offered a Protocast version
 *   and can read a close code where a browser cannot read a status.
 * - "admit": run admission (origin, credential, authenticate); a refusal from there is
 *   answered with "close", since a version was offered.
 */
export type UpgradeDecision =
  | { readonly kind: "pass" }
  | { readonly kind: "refuse"; readonly refusal: Refusal; readonly answer: "http" | "close" }
  | { readonly kind: "admit" };

/** Decides an upgrade request from its description alone, in the order PROTOCOL.md 2.4 gives. */
export function decideUpgrade(request: UpgradeDescription, policy: UpgradePolicy): UpgradeDecision {
  const versioned = request.offered.some((p) => VERSION_PROTOCOL.test(p));
  const refuse = (refusal: Refusal, answer: "http" | "close" = versioned ? "close" : "http"): UpgradeDecision => ({ kind: "refuse", refusal, answer });
  if (request.pathname !== policy.path) {
    // Only a server alone on its HTTP server answers for paths that are not its own.
    if (!request.alone) return { kind: "pass" };
    return refuse(new Refusal(404, CloseCode.NotFound, "unknown_path", `no Protocast endpoint at ${request.pathname.slice(0, 60)}`, false));
  }
  // Node only refuses headers by total size (16 KiB), and silently keeps the first 2,000:
  // many tiny headers would pass. Count them. Answered in HTTP whatever was offered: the
  // request is not one to spend a WebSocket on.
  if (request.headerCount > policy.maxHeaders) {
    return refuse(new Refusal(431, 0, "too_many_headers", `more than ${policy.maxHeaders} request headers`, false), "http");
  }
  if (!policy.websocket) {
    // A plain status on purpose: the client moves on to the HTTP fallback.
    return refuse(new Refusal(403, 0, "websocket_disabled", "WebSocket is turned off on this server; use the HTTP fallback", false), "http");
  }
  if (!versioned) return refuse(new Refusal(400, 0, "no_subprotocol", `offer the ${SUBPROTOCOL} subprotocol`, false));
  if (!request.offered.includes(SUBPROTOCOL)) {
    return refuse(new Refusal(400, CloseCode.UnsupportedVersion, "unsupported_version", `this server speaks ${SUBPROTOCOL} only`, false));
  }
  if (policy.closing) return refuse(new Refusal(503, CloseCode.TryLater, "shutting_down", "the server is shutting down", false));
  return { kind: "admit" };
}
