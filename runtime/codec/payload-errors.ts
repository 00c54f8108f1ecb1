import { Code } from "../errors/code.js";
import { ProtocastError } from "../errors/protocast-error.js";

/**
 * The bytes are not a valid encoding of the message the method expects. Every failure of a
 * payload decoder ends here (or in payloadLimit), so callers need to handle one error type.
 */
export function badPayload(typeName: string, detail: string, cause?: unknown): ProtocastError {
  return new ProtocastError(Code.InvalidArgument, `bad payload for ${typeName}: ${detail}`, {
    reason: "bad_payload",
    ...(cause === undefined ? {} : { cause }),
  });
}

/** A payload exceeds one of the decoder's PayloadLimits; `limit` names the option. */
export function payloadLimit(typeName: string, limit: string, max: number): ProtocastError {
  return new ProtocastError(Code.ResourceExhausted, `payload for ${typeName} exceeds ${limit} ${String(max)}`, {
    reason: "payload_limit",
  });
}

/**
 * A local caller handed the encoder a value its field cannot carry, such as 1.5 for an int32.
 * protobuf-es throws for the same values; nothing was sent.
 */
export function unencodablePayload(field: string, detail: string, cause?: unknown): ProtocastError {
  return new ProtocastError(Code.InvalidArgument, `cannot encode ${field}: ${detail}`, {
    reason: "unencodable_payload",
    ...(cause === undefined ? {} : { cause }),
  });
}
