import type { Logger } from "pino";
import type { ConnectionLogRecord } from "../../server/server-core.js";
import type { RefusalRecord } from "../../server/refusal-log.js";

/*
 * Connection logs through pino. Pass the result as createServer's `logger` option:
 *
 *   const server = createServer({ logger: pinoConnectionLogger(pino()) });
 *
 * One line per record, the record's fields as the line's fields and its event as the message:
 *
 *   connect              info   connectionId, sessionId, principal, remoteAddress, resumed
 *   disconnect           info   ... code, reason, durationMs, bytesIn, bytesOut
 *                        warn   when the code says something went wrong (see quietClose)
 *   auth_failure         warn   transport, status, closeCode, reason, message, remoteAddress, path
 *   upgrade_refused      warn   the same, for refusals other than origin and credential
 *   auth_refresh_failed  warn   reason
 *   protocol_violation   warn   error
 *   limit                warn   limit, action (and any event naming a limit)
 *   slow_consumer        warn   channel, buffered, highWaterMark
 *   anything else        info
 *
 * Records are built without credentials, but a log line is forever: fields named like a
 * credential are replaced by "[redacted]" at any depth, and a `token` query parameter in a
 * URL-like field loses its value, in case a future record carries a header or a URL.
 */

type LogRecord = ConnectionLogRecord | RefusalRecord;

/** Field names never written, compared without case, "-" and "_". */
const SECRET_FIELDS = new Set(["token", "accesstoken", "authorization", "cookie", "setcookie", "resumetoken", "password", "secret"]);
const URL_FIELDS = new Set(["url", "path", "href", "query"]);
const REDACTED = "[redacted]";
/** Deeper structures are cut rather than walked: a record is shallow by design. */
const MAX_DEPTH = 4;

/** Events that mean a client or the server was refused something. */
const WARN_EVENTS = new Set(["auth_failure", "upgrade_refused", "auth_refresh_failed", "protocol_violation", "slow_consumer"]);

/** Close codes of ordinary life: a client left, moved, lost its link or was rotated. */
function quietClose(code: unknown): boolean {
  return code === 1000 || code === 1001 || code === 1005 || code === 1006 || code === 4000 || code === 4001;
}

export function pinoConnectionLogger(logger: Logger): (record: LogRecord) => void {
  return (record) => {
    const fields = scrub(record, 0) as Record<string, unknown>;
    const event = String(record.event);
    logger[levelOf(event, (record as { code?: unknown }).code)](fields, event);
  };
}

function levelOf(event: string, code: unknown): "info" | "warn" {
  if (event === "disconnect") return quietClose(code) ? "info" : "warn";
  return WARN_EVENTS.has(event) || event.includes("limit") ? "warn" : "info";
}

function scrub(value: unknown, depth: number): unknown {
  if (value === null || typeof value !== "object") return value;
  if (depth >= MAX_DEPTH) return "[truncated]";
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    const plain = key.toLowerCase().replace(/[-_]/g, "");
    if (SECRET_FIELDS.has(plain)) out[key] = REDACTED;
    else if (URL_FIELDS.has(plain) && typeof v === "string") out[key] = stripQueryToken(v);
    else out[key] = scrub(v, depth + 1);
  }
  return out;
}

/** Blanks the value of credential-like query parameters, keeping the rest of the URL readable. */
function stripQueryToken(url: string): string {
  return url.replace(/([?&;](?:access_?token|token|auth|key)=)[^&;#]*/gi, `$1${REDACTED}`);
}
