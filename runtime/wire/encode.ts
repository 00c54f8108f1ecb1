import { Code } from "../errors/code.js";
import { ProtocastError } from "../errors/protocast-error.js";
import {
  FRAME_FIELD,
  type Ack,
  type AuthExpiring,
  type AuthRefresh,
  type AuthRefreshed,
  type Call,
  type ChannelPosition,
  type Envelope,
  type ErrorFrame,
  type Event,
  type Frame,
  type FrameCase,
  type Gap,
  type Goaway,
  type Hello,
  type Member,
  type Presence,
  type Publish,
  type Push,
  type Reply,
  type Resume,
  type Resumed,
  type SessionLost,
  type Subscribe,
  type Subscribed,
  type Unsubscribe,
  type Unsubscribed,
  type Welcome,
} from "./envelope.js";
import { allocate } from "./allocate.js";
import { frameSize, uint64Field } from "./size.js";
import { closeNested, varintSize, writeBytes, writeNegativeInt32, writeString, writeVarint } from "./writer.js";

/*
 * The envelope encoder: a hand-specialised protobuf writer for envelope.proto. It writes the
 * same bytes as protobuf-es toBinary (fields in number order, proto3 defaults omitted, a set
 * message field present even when empty), which test/wire proves by property.
 *
 * Tags are written as literals: (field number << 3) | wire type, so 0x08 is field 1 varint and
 * 0x12 is field 2 length-delimited. Every field inside a frame has a number below 16, so each
 * of these tags is one byte.
 */

/**
 * Encodes one envelope into a new array of exactly its size. The array may be a view into a
 * shared block (see allocate.ts): use its byteOffset and byteLength, not its .buffer alone.
 *
 * A number its field cannot carry (a negative or fractional id, a 64-bit value past 2^53-1)
 * throws ProtocastError InvalidArgument with reason "unencodable_envelope", naming the field;
 * nothing is written in that case.
 */
export function encodeEnvelope(env: Envelope): Uint8Array {
  const frame = env.frame;
  const body = frameSize(frame);
  const tag = FRAME_TAG[frame.case];
  const size =
    uint64Field(env.seq, "Envelope.seq") +
    uint64Field(env.ackSeq, "Envelope.ackSeq") +
    varintSize(tag) +
    varintSize(body) +
    body;
  const buf = allocate(size);
  let pos = varintField(buf, 0, 0x08, env.seq);
  pos = varintField(buf, pos, 0x10, env.ackSeq);
  pos = writeVarint(buf, pos, tag);
  pos = writeVarint(buf, pos, body);
  pos = writeFrame(buf, pos, frame);
  if (pos !== size) {
    // Unreachable unless the size and write passes disagree; never send a corrupt frame.
    throw new ProtocastError(Code.Internal, `envelope encoder wrote ${String(pos)} of ${String(size)} bytes`);
  }
  return buf;
}

/**
 * Encodes a channel event for broadcast. seq and ackSeq are 0 because an event is positioned by
 * its channel's epoch and offset, not by a session, so the same bytes go to every subscriber.
 */
export function encodeChannelEvent(event: Event): Uint8Array {
  return encodeEnvelope({ seq: 0, ackSeq: 0, frame: { case: "event", value: event } });
}

/** Tag of each frame kind in Envelope; fields 16 to 25 need a two-byte tag. */
const FRAME_TAG = Object.fromEntries(
  Object.entries(FRAME_FIELD).map(([name, no]) => [name, (no << 3) | 2]),
) as Readonly<Record<FrameCase, number>>;

function varintField(buf: Uint8Array, pos: number, tag: number, v: number): number {
  if (v === 0) return pos;
  buf[pos] = tag;
  return writeVarint(buf, pos + 1, v);
}

function enumField(buf: Uint8Array, pos: number, tag: number, v: number): number {
  if (v === 0) return pos;
  buf[pos] = tag;
  return v < 0 ? writeNegativeInt32(buf, pos + 1, v) : writeVarint(buf, pos + 1, v);
}

function stringField(buf: Uint8Array, pos: number, tag: number, s: string): number {
  if (s.length === 0) return pos;
  buf[pos] = tag;
  return writeString(buf, pos + 1, s);
}

function bytesField(buf: Uint8Array, pos: number, tag: number, b: Uint8Array): number {
  if (b.length === 0) return pos;
  buf[pos] = tag;
  return writeBytes(buf, pos + 1, b);
}

function boolField(buf: Uint8Array, pos: number, tag: number, b: boolean): number {
  if (!b) return pos;
  buf[pos] = tag;
  buf[pos + 1] = 1;
  return pos + 2;
}

function writeFrame(buf: Uint8Array, pos: number, frame: Frame): number {
  switch (frame.case) {
    case "hello": return writeHello(buf, pos, frame.value);
    case "welcome": return writeWelcome(buf, pos, frame.value);
    case "call": return writeCall(buf, pos, frame.value);
    case "reply": return writeReply(buf, pos, frame.value);
    case "error": return writeError(buf, pos, frame.value);
    case "subscribe": return writeSubscribe(buf, pos, frame.value);
    case "subscribed": return writeSubscribed(buf, pos, frame.value);
    case "unsubscribe": return writeUnsubscribe(buf, pos, frame.value);
    case "unsubscribed": return writeUnsubscribed(buf, pos, frame.value);
    case "publish": return writePublish(buf, pos, frame.value);
    case "event": return writeEvent(buf, pos, frame.value);
    case "presence": return writePresence(buf, pos, frame.value);
    case "push": return writePush(buf, pos, frame.value);
    case "ack": return writeAck(buf, pos, frame.value);
    case "ping": return varintField(buf, pos, 0x08, frame.value.sentAtMs);
    case "pong": return varintField(buf, pos, 0x08, frame.value.sentAtMs);
    case "resume": return writeResume(buf, pos, frame.value);
    case "resumed": return writeResumed(buf, pos, frame.value);
    case "authRefresh": return writeAuthRefresh(buf, pos, frame.value);
    case "authRefreshed": return writeAuthRefreshed(buf, pos, frame.value);
    case "authExpiring": return writeAuthExpiring(buf, pos, frame.value);
    case "goaway": return writeGoaway(buf, pos, frame.value);
    case "cancel": return varintField(buf, pos, 0x08, frame.value.id);
  }
}

function writeHello(buf: Uint8Array, pos: number, m: Hello): number {
  pos = varintField(buf, pos, 0x08, m.version);
  return stringField(buf, pos, 0x12, m.client);
}

function writeWelcome(buf: Uint8Array, pos: number, m: Welcome): number {
  pos = varintField(buf, pos, 0x08, m.version);
  pos = stringField(buf, pos, 0x12, m.sessionId);
  pos = stringField(buf, pos, 0x1a, m.resumeToken);
  pos = varintField(buf, pos, 0x20, m.pingIntervalMs);
  pos = varintField(buf, pos, 0x28, m.pingTimeoutMs);
  pos = varintField(buf, pos, 0x30, m.maxEnvelopeBytes);
  pos = varintField(buf, pos, 0x38, m.expiresAtMs);
  if (m.sessionLost !== undefined) {
    buf[pos] = 0x42;
    pos = closeNested(buf, pos + 1, writeSessionLost(buf, pos + 2, m.sessionLost));
  }
  return stringField(buf, pos, 0x4a, m.principal);
}

function writeSessionLost(buf: Uint8Array, pos: number, m: SessionLost): number {
  pos = stringField(buf, pos, 0x0a, m.previousSessionId);
  pos = stringField(buf, pos, 0x12, m.reason);
  pos = varintField(buf, pos, 0x18, m.lostFromSeq);
  return varintField(buf, pos, 0x20, m.lostToSeq);
}

function writeResume(buf: Uint8Array, pos: number, m: Resume): number {
  pos = varintField(buf, pos, 0x08, m.version);
  pos = stringField(buf, pos, 0x12, m.sessionId);
  pos = stringField(buf, pos, 0x1a, m.resumeToken);
  pos = varintField(buf, pos, 0x20, m.lastSeq);
  return stringField(buf, pos, 0x2a, m.client);
}

function writeResumed(buf: Uint8Array, pos: number, m: Resumed): number {
  pos = stringField(buf, pos, 0x0a, m.sessionId);
  pos = varintField(buf, pos, 0x10, m.lastSeq);
  pos = varintField(buf, pos, 0x18, m.pingIntervalMs);
  pos = varintField(buf, pos, 0x20, m.pingTimeoutMs);
  pos = varintField(buf, pos, 0x28, m.maxEnvelopeBytes);
  return varintField(buf, pos, 0x30, m.expiresAtMs);
}

function writeCall(buf: Uint8Array, pos: number, m: Call): number {
  pos = varintField(buf, pos, 0x08, m.id);
  pos = stringField(buf, pos, 0x12, m.method);
  pos = bytesField(buf, pos, 0x1a, m.payload);
  pos = varintField(buf, pos, 0x20, m.timeoutMs);
  return stringField(buf, pos, 0x2a, m.idempotencyKey);
}

function writeReply(buf: Uint8Array, pos: number, m: Reply): number {
  pos = varintField(buf, pos, 0x08, m.id);
  return bytesField(buf, pos, 0x12, m.payload);
}

function writeError(buf: Uint8Array, pos: number, m: ErrorFrame): number {
  pos = varintField(buf, pos, 0x08, m.id);
  pos = enumField(buf, pos, 0x10, m.code);
  pos = stringField(buf, pos, 0x1a, m.message);
  pos = stringField(buf, pos, 0x22, m.reason);
  return varintField(buf, pos, 0x28, m.retryAfterMs);
}

function writeSubscribe(buf: Uint8Array, pos: number, m: Subscribe): number {
  pos = varintField(buf, pos, 0x08, m.id);
  pos = stringField(buf, pos, 0x12, m.method);
  pos = stringField(buf, pos, 0x1a, m.channel);
  pos = boolField(buf, pos, 0x20, m.recover);
  pos = stringField(buf, pos, 0x2a, m.epoch);
  return varintField(buf, pos, 0x30, m.offset);
}

function writeSubscribed(buf: Uint8Array, pos: number, m: Subscribed): number {
  pos = varintField(buf, pos, 0x08, m.id);
  pos = stringField(buf, pos, 0x12, m.channel);
  pos = stringField(buf, pos, 0x1a, m.epoch);
  pos = varintField(buf, pos, 0x20, m.offset);
  pos = boolField(buf, pos, 0x28, m.recovered);
  if (m.gap !== undefined) {
    buf[pos] = 0x32;
    pos = closeNested(buf, pos + 1, writeGap(buf, pos + 2, m.gap));
  }
  return writeMembers(buf, pos, 0x3a, m.members);
}

function writeGap(buf: Uint8Array, pos: number, m: Gap): number {
  pos = varintField(buf, pos, 0x08, m.fromOffset);
  pos = varintField(buf, pos, 0x10, m.toOffset);
  return stringField(buf, pos, 0x1a, m.reason);
}

function writeMembers(buf: Uint8Array, pos: number, tag: number, list: readonly Member[]): number {
  for (let i = 0; i < list.length; i++) {
    const m = list[i]!;
    buf[pos] = tag;
    let end = stringField(buf, pos + 2, 0x0a, m.clientId);
    end = stringField(buf, end, 0x12, m.principal);
    pos = closeNested(buf, pos + 1, end);
  }
  return pos;
}

function writeUnsubscribe(buf: Uint8Array, pos: number, m: Unsubscribe): number {
  pos = varintField(buf, pos, 0x08, m.id);
  return stringField(buf, pos, 0x12, m.channel);
}

function writeUnsubscribed(buf: Uint8Array, pos: number, m: Unsubscribed): number {
  pos = varintField(buf, pos, 0x08, m.id);
  pos = stringField(buf, pos, 0x12, m.channel);
  pos = enumField(buf, pos, 0x18, m.code);
  return stringField(buf, pos, 0x22, m.reason);
}

function writePublish(buf: Uint8Array, pos: number, m: Publish): number {
  pos = varintField(buf, pos, 0x08, m.id);
  pos = stringField(buf, pos, 0x12, m.method);
  pos = stringField(buf, pos, 0x1a, m.channel);
  pos = bytesField(buf, pos, 0x22, m.payload);
  return stringField(buf, pos, 0x2a, m.idempotencyKey);
}

function writeEvent(buf: Uint8Array, pos: number, m: Event): number {
  pos = stringField(buf, pos, 0x0a, m.channel);
  pos = stringField(buf, pos, 0x12, m.epoch);
  pos = varintField(buf, pos, 0x18, m.offset);
  return bytesField(buf, pos, 0x22, m.payload);
}

function writePresence(buf: Uint8Array, pos: number, m: Presence): number {
  pos = stringField(buf, pos, 0x0a, m.channel);
  pos = writeMembers(buf, pos, 0x12, m.joined);
  return writeMembers(buf, pos, 0x1a, m.left);
}

function writePush(buf: Uint8Array, pos: number, m: Push): number {
  pos = stringField(buf, pos, 0x0a, m.method);
  return bytesField(buf, pos, 0x12, m.payload);
}

function writeAck(buf: Uint8Array, pos: number, m: Ack): number {
  const list = m.channels;
  for (let i = 0; i < list.length; i++) {
    buf[pos] = 0x0a;
    pos = closeNested(buf, pos + 1, writePosition(buf, pos + 2, list[i]!));
  }
  return pos;
}

function writePosition(buf: Uint8Array, pos: number, m: ChannelPosition): number {
  pos = stringField(buf, pos, 0x0a, m.channel);
  pos = stringField(buf, pos, 0x12, m.epoch);
  return varintField(buf, pos, 0x18, m.offset);
}

function writeAuthRefresh(buf: Uint8Array, pos: number, m: AuthRefresh): number {
  pos = varintField(buf, pos, 0x08, m.id);
  return stringField(buf, pos, 0x12, m.token);
}

function writeAuthRefreshed(buf: Uint8Array, pos: number, m: AuthRefreshed): number {
  pos = varintField(buf, pos, 0x08, m.id);
  return varintField(buf, pos, 0x10, m.expiresAtMs);
}

function writeAuthExpiring(buf: Uint8Array, pos: number, m: AuthExpiring): number {
  return varintField(buf, pos, 0x08, m.expiresAtMs);
}

function writeGoaway(buf: Uint8Array, pos: number, m: Goaway): number {
  pos = stringField(buf, pos, 0x0a, m.reason);
  pos = varintField(buf, pos, 0x10, m.reconnectAfterMs);
  return varintField(buf, pos, 0x18, m.closeInMs);
}
