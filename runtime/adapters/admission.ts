import type { IncomingHttpHeaders, IncomingMessage } from "node:http";
import { Code } from "../errors/code.js";
import { ProtocastError } from "../errors/protocast-error.js";
import type { Principal } from "../server/context.js";
import { TOKEN_PROTOCOL_PREFIX } from "../client/websocket-transport.js";

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

/** A refusal before any connection opens: the HTTP status to answer and why. */
export class Refusal extends Error {
  constructor(
    readonly status: number,
    message: string,
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
  if (!originAllowed(req, o.allowedOrigins)) return Promise.reject(new Refusal(403, "origin not allowed"));
  const token = readToken(req, offeredProtocols, url, o.allowQueryToken);
  return new Promise((resolve, reject) => {
    // 503, not 401: a slow authenticate says nothing about the credential, and a client told
    // 401 would give up on it.
    const timer = setTimeout(() => reject(new Refusal(503, "authentication timed out")), o.timeoutMs);
    Promise.resolve()
      .then(() => o.authenticate({ headers: req.headers, url: url.pathname, origin: req.headers.origin, token, remoteAddress }))
      .then(
        (principal) => {
          clearTimeout(timer);
          resolve(principal);
        },
        (e: unknown) => {
          clearTimeout(timer);
          const err = ProtocastError.from(e, Code.Unauthenticated);
          reject(new Refusal(err.code === Code.PermissionDenied ? 403 : 401, err.rawMessage));
        },
      );
  });
}

export const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  413: "Payload Too Large",
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
