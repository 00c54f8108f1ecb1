/**
 * Plain TypeScript shapes of protocast.v1 frames, generated from envelope.proto together with
 * their codec (generated/protocast/v1/envelope_codec.ts). They follow what protobuf-es
 * generates (camelCase fields, oneof as { case, value }) except that 64-bit fields are numbers:
 * every 64-bit value Protocast uses stays below 2^53, and the decoder rejects larger. Error is
 * named ErrorFrame so that it does not shadow the global Error.
 */
import type { Envelope, Frame } from "../../generated/protocast/v1/envelope_codec.js";

export type * from "../../generated/protocast/v1/envelope_codec.js";
/** Field number of each frame kind inside Envelope. */
export { FRAME_FIELD } from "../../generated/protocast/v1/envelope_codec.js";

/** Builds an envelope for a frame; seq and ackSeq default to 0. */
export function envelope(frame: Frame, seq = 0, ackSeq = 0): Envelope {
  return { seq, ackSeq, frame };
}
