// The envelope codec: plain frame shapes, encoder, decoder and decode limits.
export { decodeEnvelope, decodeIncoming, type NewerFrameEnvelope } from "./decode.js";
export { encodeEnvelope, encodeChannelEvent } from "./encode.js";
export { DEFAULT_DECODE_LIMITS, resolveDecodeLimits, type DecodeLimits } from "./limits.js";
export { envelope, FRAME_FIELD } from "./envelope.js";
export type * from "./envelope.js";
