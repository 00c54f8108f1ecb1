/**
 * One log record per refused connection attempt (PROTOCOL.md 2.4), whichever way it came in.
 * A record names the request's path without its query (which may hold a token) and never
 * carries a header value: no credential can reach a log through it.
 */
export interface RefusalRecord {
  /** "auth_failure": origin, credential or the authenticate hook; "upgrade_refused": anything else. */
  readonly event: "auth_failure" | "upgrade_refused";
  readonly transport: "websocket" | "http";
  /** HTTP status of the refusal: the answer itself when `closeCode` is 0, its equivalent otherwise. */
  readonly status: number;
  /** Close code sent right after 101 to a client that offered protocast; 0 for a plain HTTP answer. */
  readonly closeCode: number;
  /** Stable snake_case reason, such as "unauthenticated" or "origin_not_allowed". */
  readonly reason: string;
  /** Short message for people, as sent to the client. */
  readonly message: string;
  readonly remoteAddress: string;
  readonly path: string;
}

/** A refused attempt; the name predates refusals other than authentication ones. */
export type AuthFailureRecord = RefusalRecord;

export interface RefusalLogOptions {
  /** Where lines go. Default console.warn. */
  readonly write?: (line: string) => void;
  /** Lines per window; later refusals in the window are counted and summed up once. Default 10. */
  readonly perWindow?: number;
  /** Default 60 000 ms. */
  readonly windowMs?: number;
  readonly now?: () => number;
}

/**
 * What a server without a `logger` does with refusals: one console line each, at most
 * `perWindow` a minute, so that a client stuck on a bad token (or a scanner) cannot flood the
 * console, and an operator still learns why clients cannot connect. Only refusals are written;
 * connect and disconnect records need a configured logger.
 */
export function defaultRefusalLog(o: RefusalLogOptions = {}): (record: RefusalRecord) => void {
  const write = o.write ?? ((line: string) => console.warn(line));
  const perWindow = o.perWindow ?? 10;
  const windowMs = o.windowMs ?? 60_000;
  const now = o.now ?? Date.now;
  let windowStart = -Infinity;
  let written = 0;
  let skipped = 0;
  return (r) => {
    const t = now();
    if (t - windowStart >= windowMs) {
      if (skipped > 0) write(`protocast: ${skipped} more refused connection attempts in the last ${Math.round(windowMs / 1000)} s were not logged (pass createServer a logger to see each)`);
      windowStart = t;
      written = 0;
      skipped = 0;
    }
    if (written >= perWindow) {
      skipped++;
      return;
    }
    written++;
    const how = r.closeCode === 0 ? `HTTP ${r.status}` : `close ${r.closeCode}`;
    write(`protocast: refused ${r.transport} connection from ${r.remoteAddress || "?"} to ${r.path}: ${r.reason}${r.message === "" ? "" : ` (${r.message})`} [${how}]`);
  };
}
