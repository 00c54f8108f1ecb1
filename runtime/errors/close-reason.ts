import { CloseCode } from "./close-codes.js";
import { Code } from "./code.js";
import { ProtocastError } from "./protocast-error.js";

/** RFC 6455 leaves 123 bytes of a close frame's payload for the reason. */
export const MAX_CLOSE_REASON_BYTES = 123;

/** A reason as it travels: "<snake_case_reason>" or "<snake_case_reason>: <message>". */
const REASON_PATTERN = /^([a-z][a-z0-9_]{0,63})(?:: ?([\s\S]*))?$/;

/**
 * Builds a close reason from a stable snake_case reason and a short message for people, cut
 * to 123 bytes of UTF-8 on a character boundary. Callers never pass a credential.
 */
export function formatCloseReason(reason: string, message = ""): string {
  const text = message === "" ? reason : `${reason}: ${message}`;
  const encoder = new TextEncoder();
  if (encoder.encode(text).byteLength <= MAX_CLOSE_REASON_BYTES) return text;
  let out = "";
  let bytes = 0;
  for (const ch of text) {
    const n = encoder.encode(ch).byteLength;
    if (bytes + n > MAX_CLOSE_REASON_BYTES) break;
    out += ch;
    bytes += n;
  }
  return out;
}

/**
 * Splits a received close reason. Text that does not start with a snake_case word (an older
 * server, a proxy) keeps its words as the message and gets the close code's own name.
 */
export function parseCloseReason(code: number, text: string): { reason: string; message: string } {
  const m = REASON_PATTERN.exec(text);
  if (m !== null) return { reason: m[1]!, message: m[2] ?? "" };
  return { reason: closeCodeName(code), message: text };
}

/** What each close code means to an application, as an error code. */
export function codeOfClose(code: number): Code {
  switch (code) {
    case CloseCode.Unauthorized:
    case CloseCode.TokenExpired:
      return Code.Unauthenticated;
    case CloseCode.Forbidden:
    case 1008:
      return Code.PermissionDenied;
    case CloseCode.NotFound:
      return Code.NotFound;
    case CloseCode.UnsupportedVersion:
      return Code.Unimplemented;
    case CloseCode.ProtocolViolation:
    case CloseCode.ProtocolError:
    case CloseCode.UnsupportedData:
    case CloseCode.InvalidPayload:
      return Code.Internal;
    case CloseCode.MessageTooBig:
    case CloseCode.SlowConsumer:
    case CloseCode.RateLimited:
    case CloseCode.TooManyConnections:
      return Code.ResourceExhausted;
    default:
      return Code.Unavailable;
  }
}

/** The error a client reports for a connection closed with `code` and `text`. */
export function errorFromClose(code: number, text: string): ProtocastError {
  const { reason, message } = parseCloseReason(code, text);
  const said = message === "" ? "" : `: ${message}`;
  return new ProtocastError(codeOfClose(code), `connection closed with ${code} (${reason})${said}`, { reason, closeCode: code });
}

const names = new Map<number, string>(Object.entries(CloseCode).map(([name, value]) => [value, name.replace(/[A-Z]/g, (c, i: number) => (i === 0 ? "" : "_") + c.toLowerCase())]));

/** "going_away" for 1001, "try_later" for 4007; "closed" for a code Protocast does not name. */
export function closeCodeName(code: number): string {
  return names.get(code) ?? "closed";
}
