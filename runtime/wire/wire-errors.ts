import { CloseCode } from "../errors/close-codes.js";
import { Code } from "../errors/code.js";
import { ProtocastError } from "../errors/protocast-error.js";

/**
 * The peer sent bytes that are not a valid v1 envelope. Every decoding failure ends here, so a
 * server can close with the code the error carries without inspecting what went wrong.
 */
export function badEnvelope(detail: string, cause?: unknown): ProtocastError {
  return new ProtocastError(Code.InvalidArgument, `bad envelope: ${detail}`, {
    reason: "bad_envelope",
    closeCode: CloseCode.ProtocolViolation,
    ...(cause === undefined ? {} : { cause }),
  });
}

/** The encoded envelope is larger than the receiver accepts. */
export function envelopeTooLarge(size: number, max: number): ProtocastError {
  return new ProtocastError(
    Code.ResourceExhausted,
    `envelope of ${String(size)} bytes exceeds maxEnvelopeBytes ${String(max)}`,
    { reason: "envelope_too_large", closeCode: CloseCode.MessageTooBig },
  );
}

/** A repeated field holds more entries than the receiver accepts. */
export function tooManyEntries(field: string, max: number): ProtocastError {
  return new ProtocastError(
    Code.ResourceExhausted,
    `${field} has more than maxRepeated ${String(max)} entries (entry ${String(max + 1)} refused)`,
    { reason: "too_many_entries", closeCode: CloseCode.MessageTooBig },
  );
}

/**
 * A local caller handed the encoder a value its field cannot carry, such as a negative id.
 * This is a bug on the sending side, so there is no close code: nothing was sent.
 */
export function unencodable(field: string, value: unknown, expected: string): ProtocastError {
  return new ProtocastError(
    Code.InvalidArgument,
    `cannot encode ${field}: ${String(value)} is not ${expected}`,
    { reason: "unencodable_envelope" },
  );
}

/** The encoder's write pass disagreed with its size pass: a defect, so nothing is sent. */
export function sizeMismatch(message: string, written: number, size: number): ProtocastError {
  return new ProtocastError(Code.Internal, `${message} encoder wrote ${String(written)} of ${String(size)} bytes`);
}
