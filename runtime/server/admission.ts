import { CloseCode } from "../errors/close-codes.js";
import { Code } from "../errors/code.js";
import { ProtocastError } from "../errors/protocast-error.js";
import { TOKEN_PROTOCOL_PREFIX } from "../wire/protocol.js";
import type { Principal } from "./context.js";

/** Request headers by lower-case name, as Node's IncomingHttpHeaders holds them. */
export type RequestHeaders = Readonly<Record<string, string | string[] | undefined>>;

/** What the authenticate hook sees of the HTTP request that opens a connection. */
export interface UpgradeRequest {
  readonly headers: RequestHeaders;
  /** Path of the request, without the query. */
  readonly url: string;
  readonly origin: string | undefined;
  /** Credential from `Authorization: Bearer`, the `protocast.token.*` subprotocol, or (opt-in) `?token=`. */
  readonly token: string | undefined;
  readonly remoteAddress: string;
}

/** A request for a connection as a way in (WebSocket upgrade, HTTP fallback) hands it over. */
export interface AdmissionRequest {
  readonly headers: RequestHeaders;
  /** The request target as sent: path and query. */
  readonly url: string;
  readonly remoteAddress: string;
}

export interface AdmissionOptions {
  readonly authenticate: (request: UpgradeRequest) => Principal | Promise<Principal>;
  readonly allowedOrigins: readonly string[] | undefined;
  readonly allowQueryToken: boolean;
  readonly timeoutMs: number;
}

/**
 * A refusal before any session opens. One refusal has two forms: the close code and reason
 * sent right after 101 to a client that offered a Protocast subprotocol (browsers cannot read
 * an HTTP status), and the HTTP status for everyone else and for the HTTP fallback.
 */
export class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly closeCode: number,
    /** Stable snake_case reason, the first word of the close reason. */
    readonly reason: string,
    message: string,
    /** Refused for who is connecting (origin, credential, hook), rather than for the request's shape. */
    readonly admission = true,
  ) {
    super(message);
  }
}

/** What admission rejected with, as a Refusal; anything else counts as a failed authentication. */
export function asRefusal(e: unknown): Refusal {
  return e instanceof Refusal ? e : new Refusal(401, CloseCode.Unauthorized, "unauthenticated", String(e));
}

/**
 * The checks every way in shares (WebSocket upgrade and HTTP fallback): origin, credential,
 * the authenticate hook within the handshake timeout. Resolves to the principal or rejects
 * with a Refusal.
 */
export function admit(req: AdmissionRequest, offeredProtocols: readonly string[], o: AdmissionOptions): Promise<Principal> {
  const url = new URL(req.url, "http://localhost");
  const origin = header(req.headers, "origin");
  if (!originAllowed(req.headers, o.allowedOrigins)) {
    const why = origin === undefined ? "the request has no Origin header" : `Origin ${origin.slice(0, 80)} is not allowed`;
    return Promise.reject(new Refusal(403, CloseCode.Forbidden, "origin_not_allowed", why));
  }
  const token = readToken(req.headers, offeredProtocols, url, o.allowQueryToken);
  return new Promise((resolve, reject) => {
    // 503 / 4007, not 401 / 4502: a slow authenticate says nothing about the credential, and a
    // client told "unauthenticated" would give up on it.
    const timer = setTimeout(() => reject(new Refusal(503, CloseCode.TryLater, "auth_timeout", `authentication took over ${o.timeoutMs} ms`)), o.timeoutMs);
    Promise.resolve()
      .then(() => o.authenticate({ headers: req.headers, url: url.pathname, origin, token, remoteAddress: req.remoteAddress }))
      .then(
        (principal) => {
          clearTimeout(timer);
          resolve(principal);
        },
        (e: unknown) => {
          clearTimeout(timer);
          reject(refusalOf(ProtocastError.from(e, Code.Unauthenticated), token));
        },
      );
  });
}

/** Turns what the authenticate hook threw into a refusal; its message never echoes the credential. */
function refusalOf(err: ProtocastError, token: string | undefined): Refusal {
  let message = err.rawMessage;
  if (token !== undefined && token.length >= 4) message = message.split(token).join("[credential]");
  const own = /^[a-z][a-z0-9_]{0,63}$/.test(err.reason) ? err.reason : "";
  switch (err.code) {
    case Code.PermissionDenied:
      return new Refusal(403, CloseCode.Forbidden, own || "permission_denied", message);
    case Code.Unavailable:
      return new Refusal(503, CloseCode.TryLater, own || "unavailable", message);
    default:
      return new Refusal(401, CloseCode.Unauthorized, own || "unauthenticated", message);
  }
}

/**
 * Cross-site WebSocket hijacking defence. With an allow-list, the Origin must be on it. Without
 * one, a request that carries cookies (which a browser attaches to any site's request) must
 * come from the server's own origin; a missing or "null" Origin is refused then, since every
 * browser sends one. Requests without cookies (bearer tokens, Node clients) pass.
 */
export function originAllowed(headers: RequestHeaders, allowed: readonly string[] | undefined): boolean {
  const origin = header(headers, "origin");
  if (allowed !== undefined) return origin !== undefined && allowed.includes(origin);
  if (headers["cookie"] === undefined) return true;
  if (origin === undefined || origin === "null") return false;
  try {
    return new URL(origin).host === header(headers, "host");
  } catch {
    return false;
  }
}

/** One header's value. Node joins a repeated header into one string; a list is joined the same way. */
function header(headers: RequestHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(", ") : v;
}

function readToken(headers: RequestHeaders, offered: readonly string[], url: URL, allowQuery: boolean): string | undefined {
  const auth = header(headers, "authorization");
  if (auth !== undefined && /^bearer /i.test(auth)) return auth.slice(7).trim();
  const carried = offered.find((p) => p.startsWith(TOKEN_PROTOCOL_PREFIX));
  if (carried !== undefined) return tokenOfProtocol(carried.slice(TOKEN_PROTOCOL_PREFIX.length));
  if (allowQuery) return url.searchParams.get("token") ?? undefined;
  return undefined;
}

/**
 * The credential a `protocast.token.` subprotocol carries: base64url of its UTF-8 bytes. Read
 * as leniently as Node's Buffer reads base64, which the hook has always been given: either
 * alphabet, other characters skipped, nothing after the first "=", a lone last character
 * dropped; bytes that are not UTF-8 become U+FFFD and a leading BOM stays.
 */
export function tokenOfProtocol(encoded: string): string {
  let b64 = encoded.split("=", 1)[0]!.replace(/[^A-Za-z0-9+/_-]/g, "").replace(/-/g, "+").replace(/_/g, "/");
  if (b64.length % 4 === 1) b64 = b64.slice(0, -1);
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  return new TextDecoder("utf-8", { ignoreBOM: true }).decode(bytes);
}
