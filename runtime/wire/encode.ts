import { encodeEnvelope, encodeEnvelopeFromClient } from "../../generated/protocast/v1/envelope_codec.js";
import type { Event } from "./envelope.js";

/**
 * Encodes one envelope into a new array of exactly its size, with the bytes protobuf-es's
 * toBinary writes for the same content (fields in number order, proto3 defaults omitted, a set
 * message field present even when empty). The array may be a view into a shared block (see
 * allocate.ts): use its byteOffset and byteLength, not its .buffer alone.
 *
 * A number its field cannot carry (a negative or fractional id, a 64-bit value past 2^53-1)
 * throws ProtocastError InvalidArgument with reason "unencodable_envelope", naming the field;
 * nothing is written in that case. The encoder is generated from envelope.proto.
 */
export { encodeEnvelope };

/**
 * encodeEnvelope for a client: it encodes only the frame kinds a client sends (hello, resume,
 * call, cancel, subscribe, unsubscribe, publish, ack, ping, pong, authRefresh), so that a
 * client's bundle holds no encoder of the server's frames; any other kind throws
 * "unencodable_envelope".
 */
export { encodeEnvelopeFromClient };

/**
 * Encodes a channel event for broadcast. seq and ackSeq are 0 because an event is positioned by
 * its channel's epoch and offset, not by a session, so the same bytes go to every subscriber.
 */
export function encodeChannelEvent(event: Event): Uint8Array {
  return encodeEnvelope({ seq: 0, ackSeq: 0, frame: { case: "event", value: event } });
}
