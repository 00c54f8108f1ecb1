import type { IncomingHttpHeaders, IncomingMessage } from "node:http";
import { CloseCode } from "../../errors/close-codes.js";
import { Code } from "../../errors/code.js";
import { ProtocastError } from "../../errors/protocast-error.js";
import type { Principal } from "../../server/context.js";
import { TOKEN_PROTOCOL_PREFIX } from "../../wire/protocol.js";

/** What the authenticate hook sees of the HTTP request that opens a connection. */
export interface UpgradeRequest {
  readonly headers: IncomingHttpHeaders;
  /** Path of the request, without the query. */
  readonly url: string;
  readonly origin: string | undefined;
  /** Credential from `Authorization: Bearer`, the `protocast.token.*` subprotocol, or (opt-in) `?token=`. */
  readonly token: string | undefined;
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

/**
 * The checks every way in shares (WebSocket upgrade and HTTP fallback): origin, credential,
 * the authenticate hook within the handshake timeout. Resolves to the principal or rejects
 * with a Refusal.
 */
export function admit(req: IncomingMessage, offeredProtocols: readonly string[], o: AdmissionOptions): Promise<Principal> {
  const remoteAddress = req.socket.remoteAddress ?? "";
  const url = new URL(req.url ?? "/", "http://localhost");
  if (!originAllowed(req, o.allowedOrigins)) {
    const origin = req.headers.origin;
    const why = origin === undefined ? "the request has no Origin header" : `Origin ${origin.slice(0, 80)} is not allowed`;
    return Promise.reject(new Refusal(403, CloseCode.Forbidden, "origin_not_allowed", why));
  }
  const token = readToken(req, offeredProtocols, url, o.allowQueryToken);
  return new Promise((resolve, reject) => {
    // 503 / 4007, not 401 / 4502: a slow authenticate says nothing about the credential, and a
    // client told "unauthenticated" would give up on it.
    const timer = setTimeout(() => reject(new Refusal(503, CloseCode.TryLater, "auth_timeout", `authentication took over ${o.timeoutMs} ms`)), o.timeoutMs);
    Promise.resolve()
      .then(() => o.authenticate({ headers: req.headers, url: url.pathname, origin: req.headers.origin, token, remoteAddress }))
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

export const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  413: "Payload Too Large",
  426: "Upgrade Required",
  431: "Request Header Fields Too Large",
  503: "Service Unavailable",
};

/**
 * Cross-site WebSocket hijacking defence. With an allow-list, the Origin must be on it. Without
 * one, a request that carries cookies (which a browser attaches to any site's request) must
 * come from the server's own origin; a missing or "null" Origin is refused then, since every
 * browser sends one. Requests without cookies (bearer tokens, Node clients) pass.
 */
export function originAllowed(req: IncomingMessage, allowed: readonly string[] | undefined): boolean {
  const origin = req.headers.origin;
  if (allowed !== undefined) return origin !== undefined && allowed.includes(origin);
  if (req.headers.cookie === undefined) return true;
  if (origin === undefined || origin === "null") return false;
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}

function readToken(req: IncomingMessage, offered: readonly string[], url: URL, allowQuery: boolean): string | undefined {
  const auth = req.headers.authorization;
  if (auth !== undefined && /^bearer /i.test(auth)) return auth.slice(7).trim();
  const carried = offered.find((p) => p.startsWith(TOKEN_PROTOCOL_PREFIX));
  if (carried !== undefined) return Buffer.from(carried.slice(TOKEN_PROTOCOL_PREFIX.length), "base64url").toString("utf8");
  if (allowQuery) return url.searchParams.get("token") ?? undefined;
  return undefined;
}
