import { ProtocastError } from "../errors/protocast-error.js";
import { readEnvelope, readEnvelopeFromServer } from "../../generated/protocast/v1/envelope_codec.js";
import { FRAME_FIELD, type Envelope, type Frame } from "./envelope.js";
import { decodeLimits, type DecodeLimits } from "./limits.js";
import { WireReader } from "./reader.js";
import { badEnvelope, envelopeTooLarge } from "./wire-errors.js";

/**
 * Decodes one envelope received from a peer.
 *
 * The result is fully populated: every scalar holds its value or its default, absent message
 * fields are undefined and repeated fields are arrays. It equals what protobuf-es fromBinary
 * gives for the same bytes, with 64-bit fields as numbers. Unknown fields are skipped at every
 * level. Protobuf merge rules apply to a field that occurs twice: a scalar takes the last
 * value, a message (including the same frame kind) merges, and a different frame kind replaces
 * the earlier frame.
 *
 * Bytes fields (payloads) are views into `bytes`, not copies: decoding a frame never copies its
 * payload. That is safe as long as the caller does not write into `bytes` afterwards, which
 * holds for buffers handed over by a WebSocket; a caller that recycles its input buffer must
 * copy the payloads it keeps.
 *
 * Every failure is a ProtocastError: invalid input is InvalidArgument with reason
 * "bad_envelope" and close code 4500; input over a limit is ResourceExhausted with close code
 * 1009. Nothing else is thrown, whatever the bytes. An envelope without a frame of a known
 * kind is invalid here; see decodeIncoming for frame kinds added to v1 later.
 *
 * The field-by-field reading is generated from envelope.proto (readEnvelope in
 * generated/protocast/v1/envelope_codec.ts, over reader.ts); this file adds what the protocol
 * says beyond the schema: the size limit, the one error type and frame kinds added later.
 */
export function decodeEnvelope(bytes: Uint8Array, limits?: Partial<DecodeLimits>): Envelope {
  const env = decodeIncoming(bytes, limits);
  if (env.frame === undefined) {
    throw badEnvelope(`envelope has no frame of a known kind (field ${String(env.newerFrameField)})`);
  }
  return env;
}

/**
 * An envelope whose frame is of a kind added to v1 after this implementation: it has no frame
 * this code knows but a field numbered 26 to 99 (PROTOCOL.md, "Unknown frame kinds"). The
 * receiver applies seq and ackSeq and otherwise ignores it.
 */
export interface NewerFrameEnvelope {
  seq: number;
  ackSeq: number;
  frame: undefined;
  /** Number of the first Envelope field in 26-99 that was seen. */
  newerFrameField: number;
}

/**
 * Like decodeEnvelope, but returns an envelope that carries only a newer frame kind instead of
 * refusing it. This is what a receiver needs; decodeEnvelope suits callers that expect only
 * frames they know, such as tests and tools.
 */
export function decodeIncoming(bytes: Uint8Array, limits?: Partial<DecodeLimits>): Envelope | NewerFrameEnvelope {
  return decodeWith(readEnvelope, bytes, limits);
}

/**
 * decodeIncoming for a client: it reads only the frame kinds a server sends, so that a
 * client's bundle holds no reader of the frames only clients send. An envelope whose frame is
 * of such a kind is a violation (PROTOCOL.md 3.7: a frame kind sent by the wrong side), refused
 * like undecodable bytes, with close code 4500.
 */
export function decodeFromServer(bytes: Uint8Array, limits?: Partial<DecodeLimits>): Envelope | NewerFrameEnvelope {
  return decodeWith(readEnvelopeFromServer, bytes, limits);
}

function decodeWith(
  read: (r: WireReader, end: number) => Envelope,
  bytes: Uint8Array,
  limits: Partial<DecodeLimits> | undefined,
): Envelope | NewerFrameEnvelope {
  const { maxEnvelopeBytes, maxRepeated } = decodeLimits(limits);
  if (!(bytes instanceof Uint8Array)) throw badEnvelope("input is not a Uint8Array");
  const size = bytes.length;
  if (size > maxEnvelopeBytes) throw envelopeTooLarge(size, maxEnvelopeBytes);
  const r = new WireReader(bytes, maxRepeated);
  let env: Envelope;
  try {
    env = read(r, size);
  } catch (e) {
    if (e instanceof ProtocastError) throw e;
    // Only a defect in the decoder could get here; keep the promise of one error type.
    throw badEnvelope(`unreadable bytes: ${String(e)}`, e);
  }
  if ((env.frame as Frame | undefined) !== undefined) return env;
  const { known, newer } = frameFields(bytes);
  // A frame of a known kind that the reader left unread: one the other side sends. (The last
  // frame field is the frame, as protobuf's oneof rule says.)
  if (known !== 0) throw badEnvelope(`a ${KIND_OF_FIELD.get(known) ?? String(known)} frame, which this side never receives`);
  if (newer !== 0) return { seq: env.seq, ackSeq: env.ackSeq, frame: undefined, newerFrameField: newer };
  throw badEnvelope("envelope has no frame");
}

/** Envelope fields after the last v1 frame kind, up to 99, are kept for frame kinds added later. */
const FIRST_FRAME_FIELD = Math.min(...Object.values(FRAME_FIELD));
const LAST_FRAME_FIELD = Math.max(...Object.values(FRAME_FIELD));
const LAST_NEWER_FRAME_FIELD = 99;

const KIND_OF_FIELD = new Map(Object.entries(FRAME_FIELD).map(([kind, field]) => [field, kind]));

/**
 * The last Envelope field of a v1 frame kind and the first of a later one (26 to 99), 0 where
 * there is none. Runs only for an envelope without a frame it read, over bytes the decoder has
 * just read without error, so it walks the top-level fields without checking them again.
 */
function frameFields(bytes: Uint8Array): { known: number; newer: number } {
  const end = bytes.length;
  const r = new WireReader(bytes, 0);
  let known = 0;
  let newer = 0;
  while (r.pos < end) {
    const tag = r.tag(end);
    const field = tag >>> 3;
    if (field >= FIRST_FRAME_FIELD && field <= LAST_FRAME_FIELD) known = field;
    else if (field > LAST_FRAME_FIELD && field <= LAST_NEWER_FRAME_FIELD && newer === 0) newer = field;
    r.skip(tag, end, "Envelope", false);
  }
  return { known, newer };
}
