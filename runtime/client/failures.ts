import { shouldReconnect } from "../errors/close-codes.js";
import { Code } from "../errors/code.js";
import { ProtocastError } from "../errors/protocast-error.js";

/**
 * Why a connection attempt failed, as a ProtocastError with a snake_case reason, from whatever
 * the platform reported: a close code (the server's own refusal), an HTTP status (Node can read
 * it; browsers cannot), a socket error code (Node), or nothing at all (browsers).
 */

/** Codes that another attempt with the same URL and credential cannot fix. */
const FINAL_CODES = new Set<Code>([
  Code.Unauthenticated,
  Code.PermissionDenied,
  Code.NotFound,
  Code.InvalidArgument,
  Code.FailedPrecondition,
  Code.Unimplemented,
  Code.Internal,
]);

/** Whether reconnecting is pointless: the close code decides when there is one, else the code. */
export function isFinal(e: ProtocastError): boolean {
  if (e.closeCode !== undefined) return !shouldReconnect(e.closeCode);
  return FINAL_CODES.has(e.code);
}

/**
 * Whether the other transport should not be tried after this failure: the server itself
 * refused (close code), the credential was refused, or the URL cannot work on any transport.
 */
export function isDefinitive(e: ProtocastError): boolean {
  return e.closeCode !== undefined || e.code === Code.Unauthenticated || e.reason === "tls_mismatch" || e.reason === "bad_url";
}

/** The error for an HTTP answer other than 101 (or 200 on the fallback). */
export function errorFromStatus(status: number, detail = ""): ProtocastError {
  const said = detail === "" ? "" : `: ${detail}`;
  const make = (code: Code, reason: string, what: string): ProtocastError => new ProtocastError(code, `server answered HTTP ${status} (${what})${said}`, { reason });
  if (status >= 300 && status < 400) return make(Code.InvalidArgument, "redirected", "a redirect: point the client at the final URL");
  switch (status) {
    case 400:
    case 405:
    case 426:
    case 431:
      return make(Code.InvalidArgument, "bad_request", "the request was refused as malformed; a proxy may be stripping the upgrade");
    case 401:
      return make(Code.Unauthenticated, "unauthenticated", "the credential is missing or was refused");
    case 403:
      return make(Code.PermissionDenied, "forbidden", "forbidden");
    case 404:
      return make(Code.NotFound, "not_found", "nothing at this path; check the URL's path");
    case 408:
      return make(Code.Unavailable, "timeout", "the request timed out");
    case 429:
      return make(Code.ResourceExhausted, "rate_limited", "too many requests");
    default:
      return make(Code.Unavailable, status >= 500 ? "server_unavailable" : `http_${status}`, status >= 500 ? "server error or overloaded" : "unexpected answer");
  }
}

const CERTIFICATE_CODES = new Set([
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

/**
 * The error for a socket that failed before it opened. `failure` is what the platform gave:
 * in Node an Error with a `code` (ECONNREFUSED, ERR_SSL_…) or ws's "Unexpected server
 * response: 401"; in a browser, nothing useful.
 */
export function errorFromSocketFailure(failure: unknown, target: string): ProtocastError {
  const e = unwrap(failure);
  if (e === undefined) {
    return new ProtocastError(Code.Unavailable, `could not connect to ${target} (the browser does not say why: the server may be down, unreachable, or not speaking WebSocket there)`, {
      reason: "connect_failed",
    });
  }
  const code = (e as { code?: unknown }).code;
  const text = e.message;
  const status = /Unexpected server response: (\d{3})/.exec(text);
  if (status !== null) return errorFromStatus(Number(status[1]));
  const make = (c: Code, reason: string, message: string): ProtocastError => new ProtocastError(c, message, { reason, cause: e });
  if (/wrong version number|packet length too long|ERR_SSL_HTTP_REQUEST|http request/i.test(`${String(code)} ${text}`)) {
    return make(Code.FailedPrecondition, "tls_mismatch", `TLS handshake with ${target} failed: the server does not speak TLS on that port; use ws:// (or http://) for a plain server`);
  }
  if (typeof code === "string" && CERTIFICATE_CODES.has(code)) {
    return make(Code.Unavailable, "tls_certificate", `the certificate of ${target} was not accepted (${code})`);
  }
  if (typeof code === "string" && (code.startsWith("ERR_SSL") || code === "EPROTO")) {
    return make(Code.Unavailable, "tls_failed", `TLS handshake with ${target} failed (${text})`);
  }
  switch (code) {
    case "ECONNREFUSED":
      return make(Code.Unavailable, "connect_refused", `nothing is listening at ${target} (connection refused)`);
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return make(Code.Unavailable, "dns_failed", `the host of ${target} could not be resolved (${code})`);
    case "ECONNRESET":
    case "EPIPE":
      return make(Code.Unavailable, "connection_reset", `${target} reset the connection during the handshake`);
    case "ETIMEDOUT":
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return make(Code.Unavailable, "unreachable", `${target} is unreachable (${code})`);
    default:
      break;
  }
  if (/no subprotocol|invalid subprotocol/i.test(text)) {
    return make(Code.Unimplemented, "no_subprotocol", `the server at ${target} did not select a Protocast subprotocol: is it a Protocast endpoint?`);
  }
  return make(Code.Unavailable, "connect_failed", `could not connect to ${target}: ${text}`);
}

/** The Error inside what a platform reported: ws's ErrorEvent, fetch's TypeError with a cause. */
function unwrap(failure: unknown): Error | undefined {
  let e: unknown = failure;
  if (e !== null && typeof e === "object" && !(e instanceof Error) && "error" in e) e = (e as { error: unknown }).error;
  if (!(e instanceof Error)) return undefined;
  // fetch in Node: TypeError("fetch failed") with the socket error as its cause.
  const cause = (e as { cause?: unknown }).cause;
  if (e.name === "TypeError" && cause instanceof Error) return cause;
  return e;
}

const SCHEMES = new Set(["ws:", "wss:", "http:", "https:"]);

/**
 * Checks a server URL before anything is opened, and turns http(s) into ws(s) (older
 * browsers' WebSocket accepts only the latter). In a browser a path such as "/protocast" is
 * taken relative to the page, as the WebSocket constructor does.
 */
export function checkServerUrl(url: string): string {
  let u: URL | undefined;
  let relative = false;
  try {
    u = new URL(url);
  } catch {
    relative = true;
    const base = (globalThis as { location?: { href?: unknown } }).location?.href;
    if (typeof base === "string" && url.startsWith("/")) {
      try {
        u = new URL(url, base);
      } catch {
        u = undefined;
      }
    }
  }
  if (u === undefined || !SCHEMES.has(u.protocol)) {
    throw new ProtocastError(
      Code.InvalidArgument,
      `"${url.slice(0, 200)}" is not a ws://, wss://, http:// or https:// URL; write it in full, such as "wss://example.com/protocast" (or "ws://localhost:8080/protocast" for a local server)`,
      { reason: "bad_url" },
    );
  }
  if (u.protocol === "http:" || u.protocol === "https:") {
    u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
    return u.toString();
  }
  return relative ? u.toString() : url;
}

/** The URL for messages and debug logs: a credential in the query is blanked. */
export function safeUrl(url: string): string {
  return url.replace(/([?&;](?:access_?token|token|auth|key)=)[^&;#]*/gi, "$1[redacted]");
}
