import { CloseCode } from "../errors/close-codes.js";
import { Code } from "../errors/code.js";
import { ProtocastError } from "../errors/protocast-error.js";
import type { Frame } from "../wire/envelope.js";
import { receivedMetadataProblem, type MetadataLimits } from "../wire/metadata.js";

/**
 * Longest value, in bytes of UTF-8, of each string field a client sends (PROTOCOL.md section
 * 12). The envelope limit already bounds them all; these bounds keep one field from using the
 * whole envelope, so that a server can size what it keeps per request and per log line.
 */
export const FIELD_LIMITS = {
  method: 256,
  channel: 1_024,
  idempotencyKey: 128,
  epoch: 64,
  sessionId: 128,
  resumeToken: 256,
  client: 256,
} as const;

const utf8 = new TextEncoder();

/** Length in bytes of UTF-8, without encoding when the UTF-16 length already decides. */
function over(value: string, max: number): boolean {
  // A UTF-16 unit encodes to 1-3 bytes: short strings pass and long ones fail without encoding.
  if (value.length <= max / 3) return false;
  if (value.length > max) return true;
  return utf8.encode(value).length > max;
}

function tooLong(field: string, max: number): ProtocastError {
  return new ProtocastError(Code.InvalidArgument, `${field} is longer than ${max} bytes`, { reason: "field_too_long" });
}

/**
 * The first field of a request frame that is too long, as the Error to answer it with
 * (INVALID_ARGUMENT "field_too_long"), then metadata past the limits or malformed
 * (INVALID_ARGUMENT "bad_metadata", PROTOCOL.md 3.8); undefined when all is well. Idempotency
 * keys are checked with the request (reason idempotency_key_too_long, PROTOCOL.md 5.3).
 */
export function requestFieldProblem(frame: Frame, metadataLimits: MetadataLimits): ProtocastError | undefined {
  const L = FIELD_LIMITS;
  switch (frame.case) {
    case "call":
      if (over(frame.value.method, L.method)) return tooLong("method", L.method);
      return receivedMetadataProblem(frame.value.metadata, metadataLimits);
    case "subscribe": {
      const s = frame.value;
      if (over(s.method, L.method)) return tooLong("method", L.method);
      if (over(s.channel, L.channel)) return tooLong("channel", L.channel);
      return over(s.epoch, L.epoch) ? tooLong("epoch", L.epoch) : undefined;
    }
    case "unsubscribe":
      return over(frame.value.channel, L.channel) ? tooLong("channel", L.channel) : undefined;
    case "publish":
      if (over(frame.value.method, L.method)) return tooLong("method", L.method);
      if (over(frame.value.channel, L.channel)) return tooLong("channel", L.channel);
      return receivedMetadataProblem(frame.value.metadata, metadataLimits);
    default:
      return undefined;
  }
}

/** Hello and Resume fields: a value past its bound is a violation (close 4500). */
export function checkOpeningFields(frame: Frame): void {
  const L = FIELD_LIMITS;
  const bad = (field: string, max: number): never => {
    throw new ProtocastError(Code.InvalidArgument, `${field} is longer than ${max} bytes`, { closeCode: CloseCode.ProtocolViolation });
  };
  if (frame.case === "hello") {
    if (over(frame.value.client, L.client)) bad("client", L.client);
  } else if (frame.case === "resume") {
    const r = frame.value;
    if (over(r.client, L.client)) bad("client", L.client);
    if (over(r.sessionId, L.sessionId)) bad("session_id", L.sessionId);
    if (over(r.resumeToken, L.resumeToken)) bad("resume_token", L.resumeToken);
  }
}
