/**
 * Hostile envelopes: valid encodings of every frame kind (hand-made ones that reach real
 * methods and channels, plus samples of the codec's property-test arbitraries), damaged by
 * fast-check: truncated, bit-flipped, with bytes inserted, replaced by noise, or shaped into
 * the classic decoder attacks (oversize, huge length prefix, nested groups, repeated-field
 * amplification).
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { fc } from "@fast-check/vitest";
import { SendMessageRequestSchema, TypingResponseSchema } from "../../generated/acme/chat/v1/chat_pb.js";
import { encodeEnvelope } from "../../runtime/wire/encode.js";
import type { Envelope, Frame, FrameCase } from "../../runtime/wire/envelope.js";
import { envelope as anyEnvelope } from "../wire/arbitraries.js";

const SEND = "acme.chat.v1.ChatService/SendMessage";
const LIST = "acme.chat.v1.ChatService/ListRooms";
const ROOM = "acme.chat.v1.ChatService/RoomEvents";
const TYPING = "acme.chat.v1.ChatService/Typing";

const sendPayload = toBinary(SendMessageRequestSchema, create(SendMessageRequestSchema, { roomId: "lobby", text: "hello there" }));
const typingPayload = toBinary(TypingResponseSchema, create(TypingResponseSchema, { user: "u", typing: true }));

/** One valid frame of every kind, with names the test server really serves. */
const handMade: Frame[] = [
  { case: "hello", value: { version: 1, client: "fuzz" } },
  { case: "welcome", value: { version: 1, sessionId: "s1", resumeToken: "t".repeat(32), pingIntervalMs: 25_000, pingTimeoutMs: 10_000, maxEnvelopeBytes: 65_536, expiresAtMs: 0, sessionLost: { previousSessionId: "s0", reason: "expired", lostFromSeq: 1, lostToSeq: 9 }, principal: "p" } },
  { case: "call", value: { id: 7, method: SEND, payload: sendPayload, timeoutMs: 1_000, idempotencyKey: "key-7" } },
  { case: "call", value: { id: 8, method: LIST, payload: new Uint8Array(0), timeoutMs: 0, idempotencyKey: "" } },
  { case: "call", value: { id: 9, method: "acme.chat.v1.ChatService/Nope", payload: sendPayload, timeoutMs: 0, idempotencyKey: "" } },
  { case: "reply", value: { id: 7, payload: sendPayload } },
  { case: "error", value: { id: 7, code: 5, message: "not found", reason: "unknown_method", retryAfterMs: 10 } },
  { case: "subscribe", value: { id: 10, method: ROOM, channel: "room/lobby", recover: true, epoch: "e1", offset: 3 } },
  { case: "subscribe", value: { id: 11, method: TYPING, channel: "typing/lobby", recover: false, epoch: "", offset: 0 } },
  { case: "subscribed", value: { id: 10, channel: "room/lobby", epoch: "e1", offset: 3, recovered: false, gap: { fromOffset: 1, toOffset: 2, reason: "history" }, members: [{ clientId: "c", principal: "p" }] } },
  { case: "unsubscribe", value: { id: 12, channel: "room/lobby" } },
  { case: "unsubscribed", value: { id: 12, channel: "room/lobby", code: 0, reason: "kicked" } },
  { case: "publish", value: { id: 13, method: TYPING, channel: "typing/lobby", payload: typingPayload, idempotencyKey: "" } },
  { case: "publish", value: { id: 0, method: ROOM, channel: "room/lobby", payload: sendPayload, idempotencyKey: "pk" } },
  { case: "event", value: { channel: "room/lobby", epoch: "e1", offset: 4, payload: sendPayload } },
  { case: "presence", value: { channel: "room/lobby", joined: [{ clientId: "a", principal: "p" }], left: [{ clientId: "b", principal: "q" }] } },
  { case: "push", value: { method: "acme.chat.v1.ChatService/Notices", payload: sendPayload } },
  { case: "ack", value: { channels: [{ channel: "room/lobby", epoch: "e1", offset: 4 }, { channel: "typing/lobby", epoch: "e2", offset: 1 }] } },
  { case: "ping", value: { sentAtMs: 1_700_000_000_000 } },
  { case: "pong", value: { sentAtMs: 1_700_000_000_000 } },
  { case: "resume", value: { version: 1, sessionId: "s1", resumeToken: "t".repeat(32), lastSeq: 3, client: "fuzz" } },
  { case: "resumed", value: { sessionId: "s1", lastSeq: 3, pingIntervalMs: 25_000, pingTimeoutMs: 10_000, maxEnvelopeBytes: 65_536, expiresAtMs: 0 } },
  { case: "authRefresh", value: { id: 14, token: "fresh" } },
  { case: "authRefreshed", value: { id: 14, expiresAtMs: 1_700_000_000_000 } },
  { case: "authExpiring", value: { expiresAtMs: 1_700_000_000_000 } },
  { case: "goaway", value: { reason: "max_lifetime", reconnectAfterMs: 100, closeInMs: 5_000 } },
  { case: "cancel", value: { id: 7 } },
];

/** Frame kinds a client may send; the rest close the connection even when intact. */
const CLIENT_KINDS = new Set<FrameCase>(["call", "cancel", "subscribe", "unsubscribe", "publish", "ack", "ping", "pong", "authRefresh"]);

/**
 * Valid encodings to damage: every hand-made frame, and arbitrary frames of every kind. Most
 * arbitrary ones get seq and ack_seq 0: a random ack_seq is above anything the server sent
 * and a random seq is a gap, so they would only test that one check, over and over. Frames
 * a client may send come three times as often, so that damage lands in their fields too.
 */
export function seedEnvelopes(seed: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const frame of handMade) {
    const copies = CLIENT_KINDS.has(frame.case) ? 3 : 1;
    for (let i = 0; i < copies; i++) out.push(encodeEnvelope({ seq: 0, ackSeq: 0, frame }));
  }
  fc.sample(anyEnvelope, { numRuns: 300, seed }).forEach((env: Envelope, i) => {
    const numbered = i % 10 === 0;
    const copies = CLIENT_KINDS.has(env.frame.case) ? 3 : 1;
    for (let c = 0; c < copies; c++) out.push(encodeEnvelope(numbered ? env : { ...env, seq: 0, ackSeq: 0 }));
  });
  return out;
}

export type MutationKind = "intact" | "truncate" | "flip" | "insert" | "noise" | "oversize" | "length_bomb" | "groups" | "repeated";

export interface Mutation {
  readonly kind: MutationKind;
  readonly bytes: Uint8Array;
}

function splice(base: Uint8Array, at: number, insert: Uint8Array): Uint8Array {
  const out = new Uint8Array(base.length + insert.length);
  out.set(base.subarray(0, at));
  out.set(insert, at);
  out.set(base.subarray(at), at + insert.length);
  return out;
}

/** Damaged envelopes over `seeds`; weights keep the rare attacks rare and the budget small. */
export function mutationArbitrary(seeds: readonly Uint8Array[], maxEnvelopeBytes: number): fc.Arbitrary<Mutation> {
  const base = fc.constantFrom(...seeds);
  const at = (b: Uint8Array): fc.Arbitrary<number> => fc.nat({ max: Math.max(0, b.length) });
  const truncate = base.chain((b) => at(b).map((n): Mutation => ({ kind: "truncate", bytes: b.subarray(0, Math.min(n, b.length - 1)) })));
  const flip = base.chain((b) =>
    fc.array(fc.tuple(fc.nat({ max: Math.max(0, b.length - 1) }), fc.nat({ max: 7 })), { minLength: 1, maxLength: 4 }).map((flips): Mutation => {
      const out = Uint8Array.from(b);
      for (const [i, bit] of flips) if (i < out.length) out[i] = out[i]! ^ (1 << bit);
      return { kind: "flip", bytes: out };
    }),
  );
  const insert = base.chain((b) => fc.tuple(at(b), fc.uint8Array({ minLength: 1, maxLength: 8 })).map(([i, ins]): Mutation => ({ kind: "insert", bytes: splice(b, i, ins) })));
  const noise = fc.uint8Array({ maxLength: 200 }).map((bytes): Mutation => ({ kind: "noise", bytes }));
  const intact = base.map((bytes): Mutation => ({ kind: "intact", bytes }));
  // One byte past the limit: refused by the WebSocket layer before anything is buffered.
  const oversize = base.map((b): Mutation => ({ kind: "oversize", bytes: splice(new Uint8Array(maxEnvelopeBytes + 1 - b.length), 0, b) }));
  // A frame field whose length prefix claims 2 GiB (and one that claims 2^63).
  const lengthBomb = fc.constantFrom(
    Uint8Array.from([0x2a, 0xff, 0xff, 0xff, 0xff, 0x07, 0x08, 0x01]),
    Uint8Array.from([0x1a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x00]),
  ).map((bytes): Mutation => ({ kind: "length_bomb", bytes }));
  // Unknown fields as start-group tags nested hundreds deep: groups are refused outright.
  const groups = fc.integer({ min: 1, max: 2_000 }).map((depth): Mutation => {
    const bytes = new Uint8Array(depth * 2);
    for (let i = 0; i < depth; i++) {
      // Tag (100 << 3) | 3 = 803: field 100, wire type 3 (start group), as a two-byte varint.
      bytes[i * 2] = 0xa3;
      bytes[i * 2 + 1] = 0x06;
    }
    return { kind: "groups", bytes };
  });
  // Ack with one empty channel position too many: 2 bytes each on the wire, an object each if decoded.
  const repeated = fc.constantFrom(10_001, 20_000).map((n): Mutation => {
    const inner = new Uint8Array(n * 2);
    for (let i = 0; i < n; i++) inner[i * 2] = 0x0a;
    const len: number[] = [];
    for (let v = inner.length; ; v >>>= 7) {
      if (v < 0x80) {
        len.push(v);
        break;
      }
      len.push((v & 0x7f) | 0x80);
    }
    return { kind: "repeated", bytes: Uint8Array.from([0x82, 0x01, ...len, ...inner]) };
  });
  return fc.oneof(
    { arbitrary: truncate, weight: 20 },
    { arbitrary: flip, weight: 45 },
    { arbitrary: insert, weight: 15 },
    { arbitrary: noise, weight: 8 },
    { arbitrary: intact, weight: 8 },
    { arbitrary: lengthBomb, weight: 1 },
    { arbitrary: groups, weight: 1 },
    { arbitrary: oversize, weight: 1 },
    { arbitrary: repeated, weight: 1 },
  );
}
